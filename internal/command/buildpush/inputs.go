package buildpush

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	buildpush "github.com/hoist-ci/hoist/components/build-push"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/layer"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/snapshot"
	"github.com/hoist-ci/hoist/internal/spec"
)

// options turns the job's inputs (and kaniko's flags) into the
// component's options.
func options(j *ci.Job, src buildSource) (buildpush.Options, error) {
	o := buildpush.Options{
		Context:                 src.dir,
		Dockerfile:              src.dockerfile,
		Tags:                    j.List("tags"),
		Image:                   j.String("image"),
		DefaultRepository:       j.DefaultImage(),
		Target:                  j.String("target"),
		TarPath:                 j.String("tar-path"),
		OCILayoutPath:           j.String("oci-layout-path"),
		Compression:             layer.Compression(j.String("compression")),
		Format:                  layer.Format(j.String("media-types")),
		CacheRepo:               j.String("cache-repo"),
		DigestFile:              j.String("digest-file"),
		ImageNameWithDigestFile: j.String("image-name-with-digest-file"),
		RefFile:                 j.String("ref-file"),
		RegistryMirrors:         j.List("registry-mirror"),
		Git:                     j.Git,
		Log:                     j.Log,
	}
	o.RequestPrefix = j.RequestTagPrefix()
	var err error
	bools := map[string]*bool{}
	for _, n := range []string{"push", "no-push", "cache", "cache-run-layers", "insecure", "insecure-pull", "skip-tls-verify", "skip-tls-verify-pull"} {
		v, err := j.Bool(n)
		if err != nil {
			return o, err
		}
		bools[n] = &v
	}
	o.Push = *bools["push"] && !*bools["no-push"]
	o.Cache = *bools["cache"]
	o.NoRunCache = !*bools["cache-run-layers"]
	if ttl := j.String("cache-ttl"); ttl != "" {
		if o.CacheTTL, err = time.ParseDuration(ttl); err != nil {
			return o, &ci.UsageError{Err: fmt.Errorf("input \"cache-ttl\": %q is not a duration; write 24h or 336h", ttl)}
		}
	}
	if o.BuildArgs, err = keyValues(j, "build-args", true); err != nil {
		return o, err
	}
	if o.Labels, err = keyValues(j, "labels", false); err != nil {
		return o, err
	}
	if o.Annotations, err = keyValues(j, "annotations", false); err != nil {
		return o, err
	}
	o.Platforms = j.List("platforms")
	if o.Isolation, err = sandbox.ParseIsolation(j.String("isolation")); err != nil {
		return o, &ci.UsageError{Err: fmt.Errorf("input \"isolation\": %w", err)}
	}
	if o.Network, err = sandbox.ParseNetwork(j.String("network")); err != nil {
		return o, &ci.UsageError{Err: fmt.Errorf("input \"network\": %w", err)}
	}
	if o.Snapshot, err = snapshot.ParseChoice(j.String("snapshot-method")); err != nil {
		return o, &ci.UsageError{Err: fmt.Errorf("input \"snapshot-method\": %w", err)}
	}
	o.CacheDir = j.String("cache-dir")
	o.ScratchDir = j.String("scratch-dir")
	if o.Secrets, err = buildpush.ParseSecrets(j.Lines("secrets"), lookupEnv(j), os.ReadFile); err != nil {
		return o, &ci.UsageError{Err: err}
	}
	for _, v := range o.Secrets {
		j.Mask(string(v))
	}
	o.Output = j.CommandOutput
	if self, err := os.Executable(); err == nil {
		o.SandboxInit = self
	}
	if err := reproducible(j, &o, src.dir); err != nil {
		return o, err
	}
	for _, n := range []string{"snapshot-mode", "single-snapshot", "cleanup", "use-new-run", "cache-copy-layers"} {
		if j.Source(n) != "" && j.Source(n) != "default" {
			j.Log.Debug("accepted for kaniko compatibility, no effect", "input", n)
		}
	}

	insecure := j.List("insecure-registries")
	if *bools["insecure"] || *bools["skip-tls-verify"] {
		for _, t := range append(append([]string{}, o.Tags...), o.CacheRepo, o.Image) {
			if h := hostOf(t); h != "" {
				insecure = append(insecure, h)
			}
		}
	}
	o.InsecurePull = *bools["insecure-pull"] || *bools["skip-tls-verify-pull"]
	ro, err := registry.OptionsFromInputs(j, spec.UserAgent(), j.Log)
	if err != nil {
		return o, err
	}
	ro.Insecure = insecure
	if j.Set("push-retry") {
		n, err := j.Int("push-retry")
		if err != nil {
			return o, err
		}
		if n < 0 {
			return o, fmt.Errorf("input push-retry: %d is negative: give the retries of a registry request, 0 or more (default 4, so 5 attempts)", n)
		}
		ro.Retry.Attempts = n + 1
	}
	o.Registry, err = registry.New(ro)
	return o, err
}

// lookupEnv reads a variable through the job's environment; an empty
// one counts as unset (an empty secret is a missing one).
func lookupEnv(j *ci.Job) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v := j.Getenv(k)
		return v, v != ""
	}
}

// reproducible reads the reproducible input and SOURCE_DATE_EPOCH. In CI
// an unset SOURCE_DATE_EPOCH defaults to the commit's time (unless
// reproducible is false), so a rerun of the same commit gives the same
// digest and moves no tag.
func reproducible(j *ci.Job, o *buildpush.Options, contextDir string) error {
	sde := strings.TrimSpace(j.Getenv("SOURCE_DATE_EPOCH"))
	on := sde != ""
	explicit := j.Set("reproducible")
	if explicit {
		v, err := j.Bool("reproducible")
		if err != nil {
			return err
		}
		on = v
	}
	if sde == "" && (on || !explicit) {
		if epoch, from := j.CommitEpoch(contextDir); epoch != "" {
			sde, on = epoch, true
			j.Log.Info("SOURCE_DATE_EPOCH is not set: using the commit time, so a rerun gives the same digest", "SOURCE_DATE_EPOCH", epoch, "from", from)
		}
	}
	if !on {
		return nil
	}
	var secs int64
	if sde != "" {
		var err error
		if secs, err = strconv.ParseInt(sde, 10, 64); err != nil || secs < 0 {
			return &ci.UsageError{Err: fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds; set it to git log -1 --format=%%ct", sde)}
		}
	}
	t := time.Unix(secs, 0).UTC()
	o.Epoch = &t
	return nil
}

// keyValues reads KEY=value lines. With fromEnv, a bare KEY takes the
// environment variable's value (docker build --build-arg KEY).
func keyValues(j *ci.Job, input string, fromEnv bool) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range j.Lines(input) {
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, &ci.UsageError{Err: fmt.Errorf("input %q: an item has no name; write NAME=value", input)}
		}
		if !ok {
			if !fromEnv {
				return nil, &ci.UsageError{Err: fmt.Errorf("input %q: %q has no value; write %s=value", input, k, k)}
			}
			v = j.Getenv(k)
		}
		out[k] = v
	}
	return out, nil
}

func hostOf(ref string) string {
	if ref == "" {
		return ""
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		if repo, rerr := name.NewRepository(ref, name.WeakValidation); rerr == nil {
			return repo.RegistryStr()
		}
		return ""
	}
	return r.Context().RegistryStr()
}
