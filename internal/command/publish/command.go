// Package publish is the publish command: it reads the job's inputs, runs
// components/publish and returns its outputs. actions/publish and the multi-
// call actions/hoist run it. In short: publish packages deployment
// configuration as a Flux OCI artifact or into a blob bucket, for pull-based
// deploys. See docs/publish.md.
package publish

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	publishcomponent "github.com/hoist-ci/hoist/components/publish"
	"github.com/hoist-ci/hoist/internal/bucket"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Main is publish's main in the process's environment. It returns the exit code.
func Main() int {
	// A run is short and its heap is the content (a deploy tree): collect
	// less often than Go's default, unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	return ci.Exec(spec.Publish(), Run)
}

// Run runs publish with the job's inputs and returns the outputs.
func Run(ctx context.Context, j *ci.Job) (map[string]string, error) {
	opts, err := options(ctx, j)
	if err != nil {
		return nil, err
	}
	res, err := publishcomponent.Run(ctx, opts)
	if res.ContentDigest != "" {
		if serr := j.AddSummary(res.Markdown()); serr != nil {
			j.Log.Warn("writing the step summary", "error", serr)
		}
	}
	return res.Outputs(), err
}

func options(ctx context.Context, j *ci.Job) (publishcomponent.Options, error) {
	o := publishcomponent.Options{
		Workspace:     j.Workspace(),
		Path:          j.String("path"),
		Render:        j.String("render"),
		Values:        j.List("values"),
		Set:           j.Lines("set"),
		HelmOutput:    j.String("helm-output"),
		ReleaseName:   j.String("release-name"),
		Namespace:     j.String("namespace"),
		HelmSource:    j.String("helm-source"),
		Images:        j.List("images"),
		Tags:          j.List("tags"),
		Image:         j.String("image"),
		RequestPrefix: j.RequestTagPrefix(),
		IgnorePaths:   j.List("ignore-paths"),
		Bucket:        j.String("bucket"),
		Git:           j.Git,
		Log:           j.Log,
	}
	var err error
	if o.Diff, err = j.Bool("diff"); err != nil {
		return o, err
	}
	if o.DryRun, err = j.Bool("dry-run"); err != nil {
		return o, err
	}
	if o.Annotations, err = keyValues(j.Lines("annotations")); err != nil {
		return o, &ci.UsageError{Err: fmt.Errorf("input \"annotations\": %w", err)}
	}
	if epoch := j.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		secs, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return o, &ci.UsageError{Err: fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", epoch)}
		}
		o.Created = time.Unix(secs, 0)
	}
	if o.Render == publishcomponent.RenderHelm && o.HelmOutput != publishcomponent.HelmHelmRelease {
		if o.Helm, err = publishcomponent.FindHelm(); err != nil {
			return o, err
		}
	}
	if len(o.Tags) > 0 || o.Image != "" {
		if o.Registry, err = registry.FromInputs(j, spec.UserAgent(), j.Log); err != nil {
			return o, err
		}
	}
	if o.Bucket != "" {
		if o.BucketStore, err = bucketStore(ctx, j, o.Bucket); err != nil {
			return o, err
		}
	}
	return o, nil
}

// bucketStore connects to the bucket with the inputs, else the
// environment's conventions (AZURE_STORAGE_*, workload identity, AWS_*).
func bucketStore(ctx context.Context, j *ci.Job, raw string) (bucket.Store, error) {
	loc, err := bucket.ParseURL(raw)
	if err != nil {
		return nil, &ci.UsageError{Err: fmt.Errorf("input \"bucket\": %w", err)}
	}
	secretEnv := func(env string) string {
		v := j.Getenv(env)
		j.Mask(v)
		return v
	}
	or := func(input, env string) string {
		if v := j.String(input); v != "" {
			return v
		}
		return secretEnv(env)
	}
	switch loc.Scheme {
	case bucket.SchemeAzure:
		ao := bucket.AzureOptions{
			Endpoint:         j.String("bucket-endpoint"),
			ConnectionString: or("bucket-connection-string", "AZURE_STORAGE_CONNECTION_STRING"),
			SASToken:         or("bucket-sas-token", "AZURE_STORAGE_SAS_TOKEN"),
			Account:          j.Getenv("AZURE_STORAGE_ACCOUNT"),
			AccountKey:       secretEnv("AZURE_STORAGE_KEY"),
			TokenFile:        j.Getenv("AZURE_FEDERATED_TOKEN_FILE"),
			ClientID:         j.Getenv("AZURE_CLIENT_ID"),
			TenantID:         j.Getenv("AZURE_TENANT_ID"),
			AuthorityHost:    j.Getenv("AZURE_AUTHORITY_HOST"),
		}
		store, err := bucket.NewAzure(loc.Bucket, ao)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", loc, err)
		}
		j.Log.Info("Azure Blob Storage", "container", loc.Bucket, "credentials", ao.Method())
		return store, nil
	default:
		region := j.String("bucket-region")
		if region == "" {
			region = j.Getenv("AWS_REGION")
		}
		so := bucket.S3Options{
			Endpoint:        j.String("bucket-endpoint"),
			Region:          region,
			AccessKeyID:     or("bucket-access-key-id", "AWS_ACCESS_KEY_ID"),
			SecretAccessKey: or("bucket-secret-access-key", "AWS_SECRET_ACCESS_KEY"),
			SessionToken:    secretEnv("AWS_SESSION_TOKEN"),
		}
		store, err := bucket.NewS3(ctx, loc.Bucket, so)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", loc, err)
		}
		return store, nil
	}
}

// keyValues parses key=value lines.
func keyValues(lines []string) (map[string]string, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%q: write key=value", l)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}
