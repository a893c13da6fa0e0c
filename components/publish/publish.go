// Package publish packages deployment configuration — a directory as it
// is, a kustomize overlay rendered in-process, a Helm chart rendered with
// generated values or kept with a Flux HelmRelease — as a reproducible Flux
// OCI artifact, and syncs the same content into an Azure Blob Storage or
// S3-compatible bucket, for clusters whose Flux pulls.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/bucket"
	"github.com/hoist-ci/hoist/internal/fluxartifact"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/registry"
)

// Render modes.
const (
	RenderNone      = "none"
	RenderKustomize = "kustomize"
	RenderHelm      = "helm"
)

// Helm outputs.
const (
	HelmManifests   = "manifests"
	HelmHelmRelease = "helmrelease"
)

// Options are publish's inputs (see internal/spec.Publish for their meaning).
type Options struct {
	// Workspace is the directory relative paths (Path, Values) start from.
	Workspace string
	Path      string
	// Render is none, kustomize or helm; empty means none.
	Render string
	// Values are Helm values files; Set are Helm --set lines.
	Values []string
	Set    []string
	// HelmOutput is manifests or helmrelease; empty means manifests.
	HelmOutput  string
	ReleaseName string
	Namespace   string
	// HelmSource is Kind/name or Kind/namespace/name.
	HelmSource string
	// Helm renders charts to manifests; nil means render: helm with
	// helm-output manifests is unavailable.
	Helm HelmRenderer
	// Images are bump's `images` entries written into the content.
	Images []string

	Tags  []string
	Image string
	// RequestPrefix names PR/MR tags: pr (GitHub) or mr (GitLab).
	RequestPrefix string
	Diff          bool
	Annotations   map[string]string
	IgnorePaths   []string
	// Created is the artifact's created time. Zero means 1970-01-01T00:00:00Z,
	// as `flux push artifact --reproducible` writes it.
	Created time.Time

	// Bucket is azure://CONTAINER[/PREFIX] or s3://BUCKET[/PREFIX].
	Bucket      string
	BucketStore bucket.Store
	DryRun      bool

	Git      gitmeta.Context
	Registry *registry.Client
	Log      *slog.Logger
}

// Result is what publish wrote (or, in a dry run, would write).
type Result struct {
	// Digest of the artifact's manifest that the tags hold.
	Digest string
	// Image is the first tag's repository by digest (repo@sha256:...).
	Image string
	// Tags are the full references that hold the artifact.
	Tags []string
	// Pushed is true when a manifest was written.
	Pushed bool
	// Unchanged is true when diff found the content already in the registry.
	Unchanged bool
	Revision  string
	// ContentDigest is the digest of the content layer (sha256:...).
	ContentDigest string
	Files         int
	Bytes         int64
	Bucket        bucket.SyncResult
	BucketURL     string
	DryRun        bool
}

// Outputs returns the result as the tool's declared outputs.
func (r Result) Outputs() map[string]string {
	return map[string]string{
		"digest":          r.Digest,
		"image":           r.Image,
		"tags":            strings.Join(r.Tags, ","),
		"pushed":          strconv.FormatBool(r.Pushed),
		"revision":        r.Revision,
		"bucket-uploaded": strconv.Itoa(r.Bucket.Uploaded),
		"bucket-deleted":  strconv.Itoa(r.Bucket.Deleted),
	}
}

// Markdown renders the result for a job summary.
func (r Result) Markdown() string {
	var b strings.Builder
	title := "publish"
	if r.DryRun {
		title += " (dry run: nothing written)"
	}
	fmt.Fprintf(&b, "### %s\n\n| | |\n|---|---|\n| content | %d files, %d bytes, `%s` |\n", title, r.Files, r.Bytes, r.ContentDigest)
	if r.Revision != "" {
		fmt.Fprintf(&b, "| revision | `%s` |\n", r.Revision)
	}
	if r.Image != "" {
		state := "pushed"
		switch {
		case r.Unchanged:
			state = "unchanged (diff): not pushed"
		case r.DryRun:
			state = "not pushed (dry run)"
		}
		fmt.Fprintf(&b, "| artifact | `%s` — %s |\n", r.Image, state)
		for _, t := range r.Tags {
			fmt.Fprintf(&b, "| tag | `%s` |\n", t)
		}
	}
	if r.BucketURL != "" {
		fmt.Fprintf(&b, "| bucket | `%s`: %d uploaded, %d deleted, %d unchanged |\n", r.BucketURL, r.Bucket.Uploaded, r.Bucket.Deleted, r.Bucket.Unchanged)
	}
	return b.String()
}

// Run renders and packages the content, then pushes it to the registry
// tags and syncs it into the bucket. Nothing is written before the content
// is rendered and validated.
func Run(ctx context.Context, opts Options) (Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		opts.Log = log
	}
	begin := time.Now()
	if err := opts.check(); err != nil {
		return Result{}, err
	}
	src, err := opts.source()
	if err != nil {
		return Result{}, err
	}
	stage, err := os.MkdirTemp("", "hoist-publish-*")
	if err != nil {
		return Result{}, fmt.Errorf("creating a staging directory: %w", err)
	}
	defer os.RemoveAll(stage)

	dir, err := render(ctx, opts, src, stage)
	if err != nil {
		return Result{}, err
	}
	if len(opts.Images) > 0 {
		if dir, err = writeImages(opts, src, dir, stage); err != nil {
			return Result{}, err
		}
	}
	tree, err := fluxartifact.Collect(dir, opts.IgnorePaths)
	if err != nil {
		return Result{}, err
	}
	for _, s := range tree.Skipped {
		log.Warn("left out: not a regular file or directory (Flux packages neither symlinks nor special files)", "path", s)
	}
	// The tarball is written while the manifests are validated; nothing
	// leaves the process before both are done.
	var tgz []byte
	tarErr := make(chan error, 1)
	go func() {
		var err error
		tgz, err = tree.Tarball()
		tarErr <- err
	}()
	verr := validate(tree, validated(opts))
	if err := <-tarErr; verr == nil && err != nil {
		return Result{}, err
	}
	if verr != nil {
		return Result{}, verr
	}
	res := Result{Revision: revision(opts.Git), Files: len(tree.Regular()), Bytes: tree.Size(), DryRun: opts.DryRun}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	img, err := fluxartifact.Image(tgz, fluxartifact.Metadata{
		Created: created, Source: opts.Git.RepositoryURL, Revision: res.Revision, Annotations: opts.Annotations,
	})
	if err != nil {
		return Result{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Result{}, err
	}
	res.ContentDigest = fluxartifact.ContentDigest(m).String()
	log.Info("packaged", "in", time.Since(begin).Round(time.Millisecond).String(), "files", res.Files, "bytes", res.Bytes, "tarball", len(tgz), "content", res.ContentDigest, "revision", res.Revision)

	pushStart := time.Now()
	if err := pushArtifact(ctx, opts, img, &res); err != nil {
		return res, err
	}
	if res.Image != "" {
		log.Debug("registry done", "in", time.Since(pushStart).Round(time.Millisecond).String())
	}
	if opts.Bucket != "" {
		if err := syncBucket(ctx, opts, tree, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// check validates the options that need no file system or network.
func (o Options) check() error {
	switch o.Render {
	case "", RenderNone, RenderKustomize, RenderHelm:
	default:
		return fmt.Errorf("input \"render\": %q is not one of none, kustomize, helm", o.Render)
	}
	switch o.HelmOutput {
	case "", HelmManifests, HelmHelmRelease:
	default:
		return fmt.Errorf("input \"helm-output\": %q is not one of manifests, helmrelease", o.HelmOutput)
	}
	if o.Render != RenderHelm {
		for name, set := range map[string]bool{"values": len(o.Values) > 0, "set": len(o.Set) > 0, "helm-source": o.HelmSource != ""} {
			if set {
				return fmt.Errorf("input %q is for render: helm, but render is %q: set render: helm or drop %s", name, o.renderMode(), name)
			}
		}
	}
	if len(o.Tags) == 0 && o.Image == "" && o.Bucket == "" && !o.DryRun {
		return errors.New(`nowhere to publish to: set "tags" (registry/repo:tag), "image" (a repository; tags come from Git) or "bucket" (azure://container/prefix or s3://bucket/prefix)`)
	}
	if o.Registry == nil && (len(o.Tags) > 0 || o.Image != "") {
		return errors.New("publish: no registry client")
	}
	if o.Bucket != "" && o.BucketStore == nil {
		return errors.New("publish: no bucket client")
	}
	return nil
}

func (o Options) renderMode() string {
	if o.Render == "" {
		return RenderNone
	}
	return o.Render
}

// source resolves Path against the workspace.
func (o Options) source() (string, error) {
	p := o.Path
	if p == "" {
		p = "."
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(o.Workspace, p)
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("input \"path\": %s does not exist (relative paths start at the workspace %s)", o.Path, o.Workspace)
	case err != nil:
		return "", fmt.Errorf("input \"path\": %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("input \"path\": %s is a file; give the directory that holds the manifests", o.Path)
	}
	return p, nil
}

// revision is Flux's `<branch|tag>@sha1:<commit>`.
func revision(g gitmeta.Context) string {
	if g.SHA == "" {
		return ""
	}
	ref := g.Tag
	if ref == "" {
		ref = g.Branch
	}
	if ref == "" {
		return "sha1:" + g.SHA
	}
	return ref + "@sha1:" + g.SHA
}
