// Package retag gives an image that is already in a registry more tags —
// release tags on a git tag, latest, a promotion into another registry —
// without rebuilding it. Tags in the source's own repository cost one
// manifest read and one manifest write per tag; no blob moves.
package retag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/need"
	"github.com/hoist-ci/hoist/internal/registry"
)

// Latest policies.
const (
	LatestAuto  = "auto"
	LatestTrue  = "true"
	LatestFalse = "false"
)

// maxParallelWrites bounds concurrent manifest writes to one registry.
const maxParallelWrites = 8

// Options are retag's inputs (see internal/spec.Retag for their meaning).
type Options struct {
	// Source is the image to retag: repo:tag, repo@digest or repo:tag@digest.
	// Empty means <Image>:<short sha>.
	Source string
	// Image is the repository written to. Empty means the source's.
	Image string
	// DefaultRepository stands in for Image when neither Source nor Image is
	// set: the project's own repository on the platform.
	DefaultRepository string
	// Tags are tag names. Empty means the git tag on a tag pipeline.
	Tags          []string
	SemverAliases bool
	// Latest is auto, true or false; empty means auto.
	Latest string
	// Destinations are repositories to promote into instead of Image.
	Destinations []string
	// ExpectDigest, when set, must equal the source's digest.
	ExpectDigest string
	DryRun       bool
	// RefFile gets Result.Ref and a newline after a successful run (not in
	// a dry run): bump's images-from reads it.
	RefFile  string
	Git      gitmeta.Context
	Registry *registry.Client
	Log      *slog.Logger
}

// Result is what retag wrote (or, in a dry run, would write).
type Result struct {
	// Digest of the source manifest; every tag points at it.
	Digest string
	// Image is the first target repository by digest (repo@sha256:...).
	Image string
	// Tags are the full references written, in order, by a run that
	// succeeded. A failed run leaves Tags and Image empty, so that no output
	// claims a tag; Written lists what it wrote before it failed.
	Tags    []string
	Written []string
	DryRun  bool
	// Version is the version tag written in the first target repository:
	// 1.4.2 for the git tag v1.4.2, else the git tag; with Tags, the first.
	Version string
	// Ref is <first target repository>:<Version>@<Digest>: what a GitOps
	// bump pins.
	Ref string
}

// Outputs returns the result as the tool's declared outputs.
func (r Result) Outputs() map[string]string {
	return map[string]string{
		"digest":  r.Digest,
		"image":   r.Image,
		"tags":    strings.Join(r.Tags, ","),
		"version": r.Version,
		"ref":     r.Ref,
	}
}

// Markdown renders the result for a job summary.
func (r Result) Markdown() string {
	var b strings.Builder
	title := "retag"
	if r.DryRun {
		title += " (dry run: nothing written)"
	}
	fmt.Fprintf(&b, "### %s\n\n`%s`\n\n| tag |\n|---|\n", title, r.Image)
	for _, t := range r.Tags {
		fmt.Fprintf(&b, "| `%s` |\n", t)
	}
	return b.String()
}

// plan is what Run resolved from the options before touching a registry.
type plan struct {
	source name.Reference
	// sourceDefaulted: the source was not given but derived from the image.
	sourceDefaulted bool
	tags            []string
	targets         []name.Repository
}

// Run resolves the source once and writes every tag to every target.
// A failure midway returns the tags already written in Result.Tags and names
// them, and the ones not written, in the error.
func Run(ctx context.Context, opts Options) (Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		return Result{}, errors.New("retag: no registry client")
	}
	p, err := resolve(opts, log)
	if err != nil {
		return Result{}, err
	}

	hosts := make([]name.Registry, 0, len(p.targets))
	for _, t := range p.targets {
		hosts = append(hosts, t.Registry)
	}
	// One puller and one pusher: every read shares one ping and token per
	// repository, and so does every write.
	puller, err := opts.Registry.Puller(ctx, hosts...)
	if err != nil {
		return Result{}, err
	}
	reads := append(opts.Registry.RemoteOptions(ctx, hosts...), remote.Reuse(puller))
	src, err := remote.Get(p.source, reads...)
	if err != nil {
		if registry.IsNotFound(err) {
			return Result{}, notBuilt(p, err)
		}
		return Result{}, opts.Registry.Explain(err, p.source.Context(), registry.Read)
	}
	digest := src.Digest.String()
	log.Info("resolved source", "source", p.source.String(), "digest", digest, "mediaType", string(src.MediaType))
	if opts.ExpectDigest != "" && opts.ExpectDigest != digest {
		return Result{}, fmt.Errorf("source %s resolves to %s, not %s (expect-digest): refusing to retag a different image", p.source, digest, opts.ExpectDigest)
	}

	res := Result{Digest: digest, Image: p.targets[0].Digest(digest).String(), DryRun: opts.DryRun}
	writes := make(map[name.Repository][]string, len(p.targets))
	for _, target := range p.targets {
		tags, err := targetTags(ctx, opts, log, target, p.tags, reads)
		if err != nil {
			return Result{}, err
		}
		writes[target] = tags
	}

	res.Version = version(opts, writes[p.targets[0]])
	res.Ref = p.targets[0].Tag(res.Version).String() + "@" + digest
	if opts.DryRun {
		for _, target := range p.targets {
			for _, tag := range writes[target] {
				ref := target.Tag(tag).String()
				log.Info("dry run: would write", "tag", ref, "digest", digest)
				res.Tags = append(res.Tags, ref)
			}
		}
		return res, nil
	}

	pusher, err := opts.Registry.Pusher(ctx, hosts...)
	if err != nil {
		return Result{}, err
	}
	var planned []string
	for _, target := range p.targets {
		for _, tag := range writes[target] {
			planned = append(planned, target.Tag(tag).String())
		}
	}
	for _, target := range p.targets {
		written, err := writeTarget(ctx, pusher, src, p.source.Context(), target, writes[target], log)
		res.Written = append(res.Written, written...)
		if err != nil {
			return Result{Digest: digest, Written: res.Written}, partialError(opts.Registry.Explain(err, target, registry.Push), res.Written, planned)
		}
	}
	res.Tags = res.Written
	if opts.RefFile != "" {
		if err := os.WriteFile(opts.RefFile, []byte(res.Ref+"\n"), 0o644); err != nil {
			return res, fmt.Errorf("writing ref-file %s (every tag was written): %w", opts.RefFile, err)
		}
	}
	return res, nil
}

// version is the version tag of a retag: with explicit tags the first;
// on a tag pipeline gitmeta.Version (1.4.2 for v1.4.2) when it is among
// the tags written, else the first tag written.
func version(opts Options, written []string) string {
	if len(opts.Tags) == 0 {
		if v := gitmeta.Version(opts.Git, ""); slices.Contains(written, v) {
			return v
		}
	}
	return written[0]
}

// notBuiltError is a source that is not in the registry: most often the
// commit's pipeline never built (or pushed) it.
type notBuiltError struct {
	msg string
	err error
}

func (e *notBuiltError) Error() string { return e.msg }
func (e *notBuiltError) Unwrap() error { return e.err }

func notBuilt(p plan, err error) error {
	input := `input "source"`
	if p.sourceDefaulted {
		input = `input "source" (not set: the image at this commit's short SHA)`
	}
	return &notBuiltError{err: err, msg: fmt.Sprintf("%s: %s does not exist — was this commit built? "+
		"Retag copies an image that is already in the registry: let the build job of this commit's pipeline push it first, "+
		"or set source to an image that exists (repo:tag or repo@digest)", input, p.source)}
}

// resolve turns the options into a plan, validating every name first.
func resolve(opts Options, log *slog.Logger) (plan, error) {
	reg := opts.Registry
	switch opts.Latest {
	case LatestAuto, LatestTrue, LatestFalse, "":
	default:
		return plan{}, fmt.Errorf("input \"latest\": %q is not one of auto, true, false", opts.Latest)
	}
	source := opts.Source
	if source == "" {
		repo := opts.Image
		if repo == "" {
			repo = opts.DefaultRepository
		}
		switch {
		case repo == "":
			return plan{}, errors.New(`input "source" is not set and there is no "image" to default it from: set source (repo:tag or repo@digest) or image`)
		case opts.Git.SHA == "":
			return plan{}, fmt.Errorf(`input "source" defaults to %s:<short sha>, but the commit SHA is unknown here: set source`, repo)
		}
		source = repo + ":" + opts.Git.ShortSHA()
		log.Info("source not set: using the image at this commit", "source", source)
	}
	src, err := reg.Ref(source)
	if err != nil {
		return plan{}, fmt.Errorf("input \"source\": %w", err)
	}

	tags, err := requestedTags(opts, log)
	if err != nil {
		return plan{}, err
	}

	var targets []name.Repository
	switch {
	case len(opts.Destinations) > 0:
		for _, d := range opts.Destinations {
			repo, err := parseRepository(reg, d)
			if err != nil {
				return plan{}, fmt.Errorf("input \"destination\": %w", err)
			}
			targets = append(targets, repo)
		}
	case opts.Image != "":
		repo, err := parseRepository(reg, opts.Image)
		if err != nil {
			return plan{}, fmt.Errorf("input \"image\": %w", err)
		}
		targets = append(targets, repo)
	default:
		targets = append(targets, src.Context())
	}
	return plan{source: src, sourceDefaulted: opts.Source == "", tags: tags, targets: targets}, nil
}

// parseRepository accepts a repository only: a tag or digest there would be
// silently ignored otherwise.
func parseRepository(reg *registry.Client, s string) (name.Repository, error) {
	repo, err := reg.Repo(s)
	if err != nil {
		if _, refErr := name.ParseReference(s); refErr == nil && strings.ContainsAny(s[strings.LastIndex(s, "/")+1:], ":@") {
			return name.Repository{}, fmt.Errorf("%q names a tag or digest: give the repository only (tags go in \"tags\")", s)
		}
		return name.Repository{}, err
	}
	return repo, nil
}

// requestedTags returns the tags to write, release aliases expanded.
func requestedTags(opts Options, log *slog.Logger) ([]string, error) {
	base := opts.Tags
	if len(base) == 0 {
		if opts.Git.Event != gitmeta.EventTag || opts.Git.Tag == "" {
			return nil, need.Wrap(need.TagPipeline, "tags", errors.New(`no tags to write: set input "tags", or run on a git tag, whose name is used`))
		}
		tag := gitmeta.SanitizeTag(opts.Git.Tag)
		if tag == "" {
			return nil, fmt.Errorf("git tag %q has no characters an image tag can use: set input \"tags\"", opts.Git.Tag)
		}
		if tag != opts.Git.Tag {
			log.Info("git tag is not a valid image tag: using a sanitized form", "gitTag", opts.Git.Tag, "tag", tag)
		}
		base = []string{tag}
	}
	for _, t := range base {
		if err := gitmeta.ValidateTag(t); err != nil {
			return nil, fmt.Errorf("input \"tags\": %w", err)
		}
	}
	return base, nil
}

// targetTags returns the tags to write in one target repository: the
// requested tags, their release aliases and latest, where the floating ones
// (1.4, 1, latest) move only forward — a backport never takes them from a
// higher release already in the repository.
func targetTags(ctx context.Context, opts Options, log *slog.Logger, target name.Repository, base []string, ropts []remote.Option) ([]string, error) {
	var versions []*semver.Version
	for _, b := range base {
		if v, ok := gitmeta.ParseVersion(b); ok {
			versions = append(versions, v)
		}
	}
	latest := opts.Latest == LatestTrue
	auto := opts.Latest == LatestAuto || opts.Latest == ""
	var existing []string
	if len(versions) > 0 && (opts.SemverAliases || auto) {
		var err error
		existing, err = remote.List(target, ropts...)
		if err != nil && !isNotFound(err) {
			return nil, opts.Registry.Explain(fmt.Errorf("listing tags of %s to keep floating tags moving forward: %w", target, err), target, registry.Read)
		}
	}

	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, b := range base {
		release := gitmeta.ReleaseTags(b, opts.SemverAliases)
		var held []string
		if v, ok := gitmeta.ParseVersion(b); ok && opts.SemverAliases {
			held = gitmeta.HeldBack(v, existing)
		}
		for _, t := range release {
			if slices.Contains(held, t) && !slices.Contains(base, t) {
				log.Info("not moving a floating tag backwards: the repository has a higher release in its line",
					"tag", target.Tag(t).String(), "release", b)
				continue
			}
			add(t)
		}
	}
	if auto && len(versions) > 0 {
		v, _ := gitmeta.HighestStable(base)
		latest = gitmeta.IsLatest(v, existing)
		if latest {
			log.Info("latest=auto: this is the highest stable version in the repository", "repository", target.String(), "version", v.String())
		} else if v != nil {
			best, _ := gitmeta.HighestStable(existing)
			log.Info("latest=auto: not moving latest, the repository has a higher version", "repository", target.String(), "version", v.String(), "highest", best.Original())
		}
	}
	if latest {
		add("latest")
	}
	return out, nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// writeTarget writes tags into one repository. Within the source's
// repository every tag is a manifest PUT; elsewhere the first write copies
// whatever the target lacks (blobs mounted when on the same registry) and
// the rest are manifest PUTs. It returns the references written.
func writeTarget(ctx context.Context, pusher *remote.Pusher, src *remote.Descriptor, from, target name.Repository, tags []string, log *slog.Logger) ([]string, error) {
	var written []string
	if from.String() != target.String() {
		first := target.Tag(tags[0])
		log.Info("copying into target repository", "from", from.String(), "to", target.String())
		if err := pusher.Push(ctx, first, src); err != nil {
			return nil, fmt.Errorf("copying %s to %s: %w", from.Digest(src.Digest.String()), first, err)
		}
		log.Info("wrote tag", "tag", first.String())
		written = append(written, first.String())
		tags = tags[1:]
	}

	// Tags are independent: one failing write does not stop the others, so
	// the error can say exactly which tags hold the image and which do not.
	errs := make([]error, len(tags))
	var g errgroup.Group
	g.SetLimit(maxParallelWrites)
	for i, tag := range tags {
		ref := target.Tag(tag)
		g.Go(func() error {
			if err := pusher.Put(ctx, ref, src); err != nil {
				errs[i] = fmt.Errorf("writing tag %s: %w", ref, err)
				return nil
			}
			log.Info("wrote tag", "tag", ref.String())
			return nil
		})
	}
	_ = g.Wait() // every goroutine reports through errs
	for i, tag := range tags {
		if errs[i] == nil {
			written = append(written, target.Tag(tag).String())
		}
	}
	err := errors.Join(errs...)
	return written, err
}

// partialError says which tags a failed run wrote and which it did not.
func partialError(err error, written, planned []string) error {
	var missing []string
	for _, p := range planned {
		if !slices.Contains(written, p) {
			missing = append(missing, p)
		}
	}
	if len(written) == 0 {
		return fmt.Errorf("no tag was written (planned: %s): %w", strings.Join(planned, ", "), err)
	}
	return fmt.Errorf("retag stopped midway: written %s; not written %s: %w",
		strings.Join(written, ", "), strings.Join(missing, ", "), err)
}
