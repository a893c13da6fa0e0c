// Package buildpush builds an image from a Dockerfile without a Docker
// daemon and pushes it: BuildKit's parser for the semantics, layers made
// from the build context, base images never downloaded for COPY-only
// builds, a layer cache in a registry, and the push of every destination.
package buildpush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/layer"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/snapshot"
)

// Options of one build.
type Options struct {
	// Context is the build context directory; Dockerfile defaults to
	// <Context>/Dockerfile.
	Context    string
	Dockerfile string
	// Tags are full references to push to. With none, Image (a repository,
	// default DefaultRepository) gets the tags gitmeta computes from Git.
	Tags              []string
	Image             string
	DefaultRepository string
	BuildArgs         map[string]string
	Target            string
	// Platform is os/arch[/variant]; empty is linux/amd64. Platforms,
	// when it has several, builds one image per platform into an index.
	Platform    string
	Platforms   []string
	Labels      map[string]string
	Annotations map[string]string
	// Push false writes nothing to a registry; TarPath and OCILayoutPath
	// write the image locally.
	Push          bool
	TarPath       string
	OCILayoutPath string
	Compression   layer.Compression
	Format        layer.Format
	// Epoch, when set, makes the build reproducible: created times and
	// file times are clamped to it.
	Epoch *time.Time
	// Cache enables the layer cache in CacheRepo (default <image>/cache);
	// entries older than CacheTTL are ignored (0: no limit).
	Cache     bool
	CacheRepo string
	CacheTTL  time.Duration
	// NoRunCache keeps RUN layers out of the cache (kaniko's
	// --cache-run-layers=false).
	NoRunCache bool
	// DigestFile and ImageNameWithDigestFile are written after the push.
	DigestFile              string
	ImageNameWithDigestFile string
	Git                     gitmeta.Context
	Registry                *registry.Client
	Log                     *slog.Logger
	// RegistryMirrors are tried, in order, before Docker Hub for Docker
	// Hub images (host or host/path).
	RegistryMirrors []string
	// RequestPrefix names the tag of a pull/merge request build: pr or mr.
	RequestPrefix string
	// HTTP fetches ADD URLs; nil is http.DefaultClient.
	HTTP *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// TempDir holds layer files; empty is the OS temp dir.
	TempDir string
	// ScratchDir holds the stages RUN unpacks; empty: memory (/dev/shm)
	// when it has plenty of room, else TempDir.
	ScratchDir string

	// Isolation of RUN commands (auto: namespaces where permitted, else
	// chroot) and their network (RUN --network=none narrows it per RUN).
	Isolation sandbox.Isolation
	Network   sandbox.Network
	// SandboxInit is a binary whose main calls sandbox.Init first (the
	// running build-push): with it, RUN under namespaces gets a fresh
	// /proc, /dev and /sys.
	SandboxInit string
	// Snapshot is how RUN layers are captured: auto (overlayfs where it
	// can be mounted, else a metadata index), overlay or index.
	Snapshot snapshot.Choice
	// CacheDir keeps RUN --mount=type=cache contents between builds (one
	// directory per cache id); empty: a temporary one per build.
	CacheDir string
	// Secrets are RUN --mount=type=secret values by id. They never reach
	// a layer, a cache key, the log or an error.
	Secrets map[string][]byte
	// Output receives the output of RUN commands (secrets masked); nil
	// discards it.
	Output io.Writer

	links  *links        // set by Run
	memory memoryScratch // tests: another tmpfs than /dev/shm
}

// links are the registry connections of one build: every read of a base
// image shares one ping (and token) per registry, and so does every read
// and write of the destinations and the cache.
type links struct {
	base, target []remote.Option
}

func newLinks(ctx context.Context, c *registry.Client, targets []name.Registry) (*links, error) {
	bp, err := c.Puller(ctx)
	if err != nil {
		return nil, err
	}
	tp, err := c.Puller(ctx, targets...)
	if err != nil {
		return nil, err
	}
	pp, err := c.Pusher(ctx, targets...)
	if err != nil {
		return nil, err
	}
	return &links{
		base:   append(c.RemoteOptions(ctx), remote.Reuse(bp)),
		target: append(c.RemoteOptions(ctx, targets...), remote.Reuse(tp), remote.Reuse(pp)),
	}, nil
}

// forBase are the options of a base image read, plus extra.
func (l *links) forBase(extra ...remote.Option) []remote.Option {
	return append(slices.Clone(l.base), extra...)
}

// forTarget are the options of a destination or cache access, plus extra.
func (l *links) forTarget(extra ...remote.Option) []remote.Option {
	return append(slices.Clone(l.target), extra...)
}

// Result of a build.
type Result struct {
	Digest string
	// Image is repo@digest in the first destination.
	Image string
	Tags  []string
	// Layers built, layers taken from the cache, bytes of base images read.
	LayersBuilt, CacheHits int
	BaseReads              int64
	Metadata               map[string]any
}

// Outputs are the tool's outputs.
func (r Result) Outputs() map[string]string {
	md, _ := json.Marshal(r.Metadata)
	return map[string]string{
		"digest":   r.Digest,
		"image":    r.Image,
		"tags":     strings.Join(r.Tags, ","),
		"metadata": string(md),
	}
}

type stageOut struct {
	base   v1.Image // the image the stage's chain starts from (nil: scratch)
	layers []v1.Layer
	fs     *stageFS
	key    string // cache key chain
}

type builder struct {
	o        Options
	plan     *dockerfile.Plan
	ctxDir   *layer.Context
	stages   map[*dockerfile.Stage]*stageOut
	baseRead atomic.Int64
	cache    *cache
	built    int
	hits     int
	temps    []*layer.Layer
	images   map[string]v1.Image // resolved --from images
	// imageRoots are the images COPY --from or RUN --mount=from unpacked.
	imageRoots map[v1.Hash]string
	// baseTrees are the base images' file lists read so far.
	baseTrees map[v1.Hash]*layer.Tree

	roots        []string // unpacked stage roots and temporary cache mounts
	cacheDirOnce sync.Once
	tmpCacheDir  string
	tmpCacheErr  error
	isoMu        sync.Mutex
	isoUsed      sandbox.Isolation
	snapOnce     sync.Once
	snap         snapshot.Method
	snapErr      error
}

// cleanup removes the stages' unpacked roots in the background (on a
// disk, thousands of unlinks take about a second): the image is assembled
// and pushed meanwhile, and Run waits for it before returning.
func (b *builder) cleanup(wg *sync.WaitGroup) {
	roots := b.roots
	b.roots = nil
	if len(roots) == 0 {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, r := range roots {
			if err := removeRoot(r); err != nil {
				b.o.Log.Warn("removing a temporary root", "dir", r, "error", err)
			}
		}
	}()
}

// Run builds and pushes.
func Run(ctx context.Context, o Options) (res Result, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.Compression == "" {
		o.Compression = layer.Gzip
	}
	if o.Format == "" {
		o.Format = layer.OCI
	}
	if o.Compression == layer.Zstd && o.Format == layer.Docker {
		return res, errors.New("compression zstd needs media-types oci: Docker's media types have no zstd layer; set media-types: oci or compression: gzip")
	}
	if o.Context == "" {
		o.Context = "."
	}
	if o.Dockerfile == "" {
		o.Dockerfile = filepath.Join(o.Context, "Dockerfile")
	}
	tags, err := destinations(ctx, o)
	if err != nil {
		return res, err
	}
	if o.Push && len(tags) == 0 {
		return res, errors.New("no destination: set tags (full references such as registry.example.com/app:1.0) or image (a repository), or push: false with tar-path or oci-layout-path")
	}
	src, err := os.ReadFile(o.Dockerfile)
	if errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(o.Dockerfile) {
		// kaniko resolves a --dockerfile that is not found against the context.
		if alt, aerr := os.ReadFile(filepath.Join(o.Context, o.Dockerfile)); aerr == nil {
			src, err = alt, nil
			o.Dockerfile = filepath.Join(o.Context, o.Dockerfile)
		}
	}
	if err != nil {
		return res, fmt.Errorf("reading the Dockerfile %s: %w (set dockerfile to its path)", o.Dockerfile, err)
	}
	df, err := dockerfile.Parse(o.Dockerfile, src)
	if err != nil {
		return res, err
	}
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = []string{o.Platform}
	}
	cctx, err := layer.OpenContext(o.Context, o.Dockerfile)
	if err != nil {
		return res, err
	}
	var c *cache
	if o.Cache {
		repo := o.CacheRepo
		if repo == "" {
			if len(tags) == 0 {
				return res, errors.New("cache: true needs cache-repo or a destination to derive <image>/cache from")
			}
			repo = tags[0].Context().Name() + "/cache"
		}
		cr, err := o.Registry.Repo(repo)
		if err != nil {
			return res, fmt.Errorf("cache-repo %q: %w", repo, err)
		}
		c = &cache{repo: cr, ctx: ctx}
	}
	var targets []name.Registry
	for _, t := range tags {
		targets = append(targets, t.Context().Registry)
	}
	if c != nil {
		targets = append(targets, c.repo.Registry)
	}
	if o.links, err = newLinks(ctx, o.Registry, targets); err != nil {
		return res, err
	}
	if c != nil {
		c.o = o
	}
	var temps []*layer.Layer
	var removing sync.WaitGroup
	defer func() {
		for _, l := range temps {
			_ = l.Close()
		}
		removing.Wait()
	}()
	var art artifact
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		var plat v1.Platform
		if p != "" {
			if plat, err = dockerfile.ParsePlatform(p); err != nil {
				return res, fmt.Errorf("platforms: %w", err)
			}
		}
		plan, err := dockerfile.NewPlan(df, dockerfile.Options{BuildArgs: o.BuildArgs, Target: o.Target, TargetPlatform: plat, BuildPlatform: v1.Platform{OS: "linux", Architecture: hostArch()}})
		if err != nil {
			return res, err
		}
		b := &builder{o: o, plan: plan, ctxDir: cctx, stages: map[*dockerfile.Stage]*stageOut{}, images: map[string]v1.Image{}, imageRoots: map[v1.Hash]string{}, baseTrees: map[v1.Hash]*layer.Tree{}, cache: c}
		states, err := plan.Run(ctx, dockerfile.Hooks{Base: b.base, Op: b.op, Stage: func(_ context.Context, st *dockerfile.State) error { b.out(st); return nil }})
		temps = append(temps, b.temps...)
		b.cleanup(&removing)
		if err != nil {
			if c != nil {
				c.wait()
			}
			return res, err
		}
		if unused := plan.UnusedBuildArgs(); len(unused) > 0 && len(adds) == 0 {
			o.Log.Warn("build args not consumed by any ARG of the built stages", "args", strings.Join(unused, ","))
		}
		if c != nil {
			c.wait()
		}
		img, err := b.assemble(states[plan.Target], tags)
		if err != nil {
			return res, err
		}
		res.LayersBuilt += b.built
		res.CacheHits += b.hits
		res.BaseReads += b.baseRead.Load()
		art.img = img
		cf, err := img.ConfigFile()
		if err != nil {
			return res, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}}})
	}
	if c != nil {
		c.wait()
	}
	if len(adds) > 1 {
		mt := types.OCIImageIndex
		if o.Format == layer.Docker {
			mt = types.DockerManifestList
		}
		art = artifact{idx: mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), adds...)}
	}
	digest, err := art.digest()
	if err != nil {
		return res, fmt.Errorf("computing the image digest: %w", err)
	}
	res.Digest = digest.String()
	w := &builder{o: o}
	if err := w.write(ctx, art, tags); err != nil {
		return res, err // no tag or image output claims a push that failed
	}
	for _, t := range tags {
		res.Tags = append(res.Tags, t.String())
	}
	if len(tags) > 0 {
		res.Image = tags[0].Context().Name() + "@" + res.Digest
	}
	res.Metadata = map[string]any{
		"containerimage.digest": res.Digest,
		"image.name":            strings.Join(res.Tags, ","),
		"layers.built":          res.LayersBuilt,
		"layers.cached":         res.CacheHits,
	}
	if err := writeFiles(o, res, tags); err != nil {
		return res, err
	}
	return res, nil
}

func hostArch() string { return goarch }

func refSuffix(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + r.Identifier()
}

// PullRegistries are the registries the build reads base images from
// (FROM and COPY --from images of the stages the target needs), for
// kaniko's --insecure-pull.
func PullRegistries(o Options) ([]string, error) {
	file := o.Dockerfile
	if file == "" {
		file = filepath.Join(o.Context, "Dockerfile")
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the Dockerfile %s: %w (set file to its path)", file, err)
	}
	df, err := dockerfile.Parse(file, src)
	if err != nil {
		return nil, err
	}
	plan, err := dockerfile.NewPlan(df, dockerfile.Options{BuildArgs: o.BuildArgs, Target: o.Target})
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, img := range plan.Images() {
		r, err := name.ParseReference(img, name.WeakValidation)
		if err != nil {
			continue
		}
		hosts = append(hosts, r.Context().RegistryStr())
	}
	return hosts, nil
}

// Markdown summarises the result for the step summary.
func (r Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### build-push\n\n| | |\n|---|---|\n| digest | `%s` |\n", r.Digest)
	for _, t := range r.Tags {
		fmt.Fprintf(&b, "| tag | `%s` |\n", t)
	}
	fmt.Fprintf(&b, "| layers built | %d |\n| layers from the cache | %d |\n", r.LayersBuilt, r.CacheHits)
	return b.String()
}

// existingTags lists the repository's tags on a tag pipeline, where the
// semver aliases and latest depend on what is already released.
func existingTags(ctx context.Context, o Options, repo string) ([]string, error) {
	if o.Git.Tag == "" || !o.Push {
		return nil, nil
	}
	r, err := o.Registry.Repo(repo)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", repo, err)
	}
	tags, err := remote.List(r, o.Registry.RemoteOptions(ctx, r.Registry)...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		return nil, o.Registry.Explain(fmt.Errorf("listing the tags of %s: %w", repo, err), r, registry.Read)
	}
	return tags, nil
}

// destinations are the tags to push: Tags, or Image + tags from Git.
func destinations(ctx context.Context, o Options) ([]name.Reference, error) {
	var refs []name.Reference
	list := o.Tags
	if len(list) == 0 {
		repo := o.Image
		if repo == "" {
			repo = o.DefaultRepository
		}
		if repo == "" {
			return nil, nil
		}
		existing, err := existingTags(ctx, o, repo)
		if err != nil {
			return nil, err
		}
		for _, t := range gitmeta.BuildTags(o.Git, gitmeta.BuildTagOptions{SemverAliases: true, RequestPrefix: o.RequestPrefix, Existing: existing}) {
			list = append(list, repo+":"+t)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("image %s: no tag could be computed from the Git context (no commit SHA): set tags", repo)
		}
	}
	for _, t := range list {
		r, err := o.Registry.Ref(t)
		if err != nil {
			return nil, fmt.Errorf("tag %q: %w", t, err)
		}
		if _, ok := r.(name.Digest); ok {
			return nil, fmt.Errorf("tag %q is a digest reference: destinations are tags", t)
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// base resolves a stage's base image to a digest, once, without reading
// its layers.
func (b *builder) base(ctx context.Context, s *dockerfile.Stage) (*v1.ConfigFile, error) {
	img, err := b.resolve(ctx, s.Base, s.Platform)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: FROM %s: %w", b.plan.File.Name, s.Line(), s.Base, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s:%d: reading the config of %s: %w", b.plan.File.Name, s.Line(), s.Base, err)
	}
	out := &stageOut{base: img, fs: newStageFS()}
	d, _ := img.Digest()
	out.key = "base:" + d.String() + ":" + string(b.o.Compression) + ":" + string(b.o.Format)
	b.stages[s] = out
	return cf, nil
}

func (b *builder) resolve(ctx context.Context, ref string, plat v1.Platform) (v1.Image, error) {
	if img, ok := b.images[ref+"|"+dockerfile.FormatPlatform(plat)]; ok {
		return img, nil
	}
	r, err := b.o.Registry.Ref(ref)
	if err != nil {
		return nil, err
	}
	opts := b.o.links.forBase(remote.WithPlatform(plat))
	var desc *remote.Descriptor
	if r.Context().RegistryStr() == name.DefaultRegistry {
		for _, m := range b.o.RegistryMirrors {
			mr, merr := b.o.Registry.Ref(strings.TrimSuffix(m, "/") + "/" + r.Context().RepositoryStr() + refSuffix(r))
			if merr != nil {
				b.o.Log.Warn("registry mirror skipped", "mirror", m, "error", merr)
				continue
			}
			if desc, err = remote.Get(mr, opts...); err == nil {
				b.o.Log.Info("base image from mirror", "ref", ref, "mirror", m)
				break
			}
			b.o.Log.Warn("registry mirror failed; trying the next", "mirror", m, "error", err)
		}
	}
	if desc == nil {
		if desc, err = remote.Get(r, opts...); err != nil {
			return nil, b.o.Registry.Explain(err, r.Context(), registry.Read)
		}
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("%s has no image for %s: %w", ref, dockerfile.FormatPlatform(plat), err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	b.o.Log.Info("base image", "ref", ref, "digest", d.String(), "platform", dockerfile.FormatPlatform(plat))
	b.images[ref+"|"+dockerfile.FormatPlatform(plat)] = img
	return img, nil
}

// out returns (creating) the builder's record of a stage.
func (b *builder) out(st *dockerfile.State) *stageOut {
	s := st.Stage()
	if o, ok := b.stages[s]; ok {
		return o
	}
	o := &stageOut{}
	if s.BaseStage != nil {
		p := b.stages[s.BaseStage]
		o.base = p.base
		o.layers = append(o.layers, p.layers...)
		o.fs = p.fs.inherit()
		o.key = p.key
		if p.fs.root != "" && b.uses(s.BaseStage) == 1 {
			// Only this stage reads the base stage: it takes over the
			// unpacked root instead of unpacking it again.
			o.fs.root, p.fs.root = p.fs.root, ""
		}
	} else {
		o.fs = newStageFS()
		o.key = "scratch:" + dockerfile.FormatPlatform(s.Platform) + ":" + string(b.o.Compression) + ":" + string(b.o.Format)
	}
	b.stages[s] = o
	return o
}

// uses counts the stages that read stage s: FROM s, COPY --from=s,
// RUN --mount=from=s.
func (b *builder) uses(s *dockerfile.Stage) int {
	n := 0
	for _, o := range b.plan.Stages {
		if o.BaseStage == s {
			n++
		}
		for _, d := range o.CopyFrom {
			if d == s {
				n++
			}
		}
	}
	return n
}

// assemble makes the final image: the base (or empty) + this build's
// layers, the computed config, labels and annotations.
func (b *builder) assemble(st *dockerfile.State, tags []name.Reference) (v1.Image, error) {
	out := b.out(st)
	var img v1.Image = empty.Image
	if out.base != nil {
		img = out.base
	}
	mt := types.OCIManifestSchema1
	cmt := types.OCIConfigJSON
	if b.o.Format == layer.Docker {
		mt, cmt = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img = mutate.MediaType(img, mt)
	img = mutate.ConfigMediaType(img, cmt)
	if len(out.layers) > 0 {
		layers := out.layers
		if b.cache != nil {
			layers = make([]v1.Layer, len(out.layers))
			for i, l := range out.layers {
				layers[i] = b.cache.mountable(l)
			}
		}
		var err error
		if img, err = mutate.AppendLayers(img, layers...); err != nil {
			return nil, fmt.Errorf("assembling the image: %w", err)
		}
	}
	cfg := st.Config.DeepCopy()
	created := b.o.Now().UTC()
	if b.o.Epoch != nil {
		created = b.o.Epoch.UTC()
	}
	cfg.Created = v1.Time{Time: created}
	for i := range cfg.History {
		if cfg.History[i].Created.IsZero() {
			cfg.History[i].Created = v1.Time{Time: created}
		}
	}
	labels := gitmeta.OCILabels(b.o.Git, created, titleOf(tags))
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	for k, v := range labels {
		cfg.Config.Labels[k] = v
	}
	for k, v := range b.o.Labels {
		cfg.Config.Labels[k] = v
	}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("assembling the image config: %w", err)
	}
	ann := map[string]string{}
	if b.o.Format == layer.OCI {
		for k, v := range labels {
			ann[k] = v
		}
	}
	for k, v := range b.o.Annotations {
		ann[k] = v
	}
	if len(ann) > 0 {
		if b.o.Format == layer.Docker && len(b.o.Annotations) > 0 {
			return nil, errors.New("annotations need media-types: oci (Docker manifests have none)")
		}
		img = mutate.Annotations(img, ann).(v1.Image)
	}
	return img, nil
}

func titleOf(tags []name.Reference) string {
	if len(tags) == 0 {
		return ""
	}
	repo := tags[0].Context().RepositoryStr()
	return repo[strings.LastIndex(repo, "/")+1:]
}

// write pushes to every destination (blobs first, each tag after every
// blob is present: go-containerregistry writes the manifest last) and
// writes the local outputs.
// artifact is what a build produces: an image, or an index of images.
type artifact struct {
	img v1.Image
	idx v1.ImageIndex
}

func (a artifact) digest() (v1.Hash, error) {
	if a.idx != nil {
		return a.idx.Digest()
	}
	return a.img.Digest()
}

func (b *builder) write(ctx context.Context, art artifact, tags []name.Reference) error {
	if b.o.Push {
		var first name.Reference
		var mounted *artifact
		for _, t := range tags {
			target := art
			if first != nil && t.Context().RegistryStr() == first.Context().RegistryStr() && t.Context().Name() != first.Context().Name() {
				// The same manifest read back from the first destination:
				// its layers are remote, so the push mounts them.
				if mounted == nil {
					opts := b.o.links.forTarget()
					if art.idx != nil {
						if r, err := remote.Index(first, opts...); err == nil {
							mounted = &artifact{idx: r}
						}
					} else if r, err := remote.Image(first, opts...); err == nil {
						mounted = &artifact{img: r}
					}
				}
				if mounted != nil {
					target = *mounted
				}
			}
			if err := b.push(ctx, t, target); err != nil {
				return b.o.Registry.Explain(fmt.Errorf("pushing %s: %w", t, err), t.Context(), registry.Push)
			}
			if first == nil {
				first = t
			}
		}
	}
	if b.o.TarPath != "" {
		if art.idx != nil {
			return errors.New("tar-path holds one image: with several platforms use oci-layout-path")
		}
		var ref name.Reference
		if len(tags) > 0 {
			ref = tags[0]
		} else {
			r, err := name.ParseReference("image:latest")
			if err != nil {
				return err
			}
			ref = r
		}
		refs := map[name.Reference]v1.Image{ref: art.img}
		for _, t := range tags[min(1, len(tags)):] {
			refs[t] = art.img
		}
		if err := tarball.MultiRefWriteToFile(b.o.TarPath, refs); err != nil {
			return fmt.Errorf("writing tar-path %s: %w", b.o.TarPath, err)
		}
	}
	if b.o.OCILayoutPath != "" {
		p, err := layout.FromPath(b.o.OCILayoutPath)
		if err != nil {
			if p, err = layout.Write(b.o.OCILayoutPath, empty.Index); err != nil {
				return fmt.Errorf("writing oci-layout-path %s: %w", b.o.OCILayoutPath, err)
			}
		}
		if art.idx != nil {
			err = p.AppendIndex(art.idx)
		} else {
			err = p.AppendImage(art.img)
		}
		if err != nil {
			return fmt.Errorf("writing oci-layout-path %s: %w", b.o.OCILayoutPath, err)
		}
	}
	return nil
}

// push writes one destination, logging progress (bytes, rate).
func (b *builder) push(ctx context.Context, t name.Reference, art artifact) error {
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		var last v1.Update
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					return
				}
				last = u
			case <-tick.C:
				b.o.Log.Info("pushing", "tag", t.String(), "bytes", last.Complete, "of", last.Total, "rate", rate(last.Complete, time.Since(start)))
			}
		}
	}()
	opts := b.o.links.forTarget(remote.WithProgress(updates))
	var err error
	if art.idx != nil {
		err = remote.WriteIndex(t, art.idx, opts...)
	} else {
		err = remote.Write(t, art.img, opts...)
	}
	<-done
	if err != nil {
		return err
	}
	b.o.Log.Info("pushed", "tag", t.String(), "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/d.Seconds()/1e6)
}

func writeFiles(o Options, res Result, tags []name.Reference) error {
	if o.DigestFile != "" {
		if err := os.WriteFile(o.DigestFile, []byte(res.Digest), 0o644); err != nil {
			return fmt.Errorf("writing digest-file %s: %w", o.DigestFile, err)
		}
	}
	if o.ImageNameWithDigestFile != "" {
		var lines []string
		for _, t := range tags {
			lines = append(lines, t.Context().Name()+"@"+res.Digest)
		}
		if err := os.WriteFile(o.ImageNameWithDigestFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing image-name-with-digest-file %s: %w", o.ImageNameWithDigestFile, err)
		}
	}
	return nil
}
