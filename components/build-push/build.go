package buildpush

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/layer"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/snapshot"
)

// stageOut is what the builder knows of a stage as it builds it.
type stageOut struct {
	base   v1.Image // the image the stage's chain starts from (nil: scratch)
	layers []v1.Layer
	fs     *stageFS
	key    string // cache key chain
}

// build is one Run: the options (defaults applied, never changed after),
// the Dockerfile parsed once, the context, the destinations, the registry
// connections and the cache every platform's builder shares, and the
// temporary files to remove at the end.
type build struct {
	o      Options
	df     *dockerfile.File
	ctxDir *layer.Context
	tags   []name.Reference
	links  *links
	cache  *cache // nil without cache
	// temps are the layer files made; removing waits for the stages'
	// roots, removed in the background.
	temps    []*layer.Layer
	removing sync.WaitGroup
}

// builder builds the target for one platform.
type builder struct {
	*build
	plan     *dockerfile.Plan
	stages   map[*dockerfile.Stage]*stageOut
	baseRead atomic.Int64
	built    int
	hits     int
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

// newBuild applies the defaults, parses the Dockerfile, opens the context,
// computes the destinations and sets up the registry connections and the
// cache.
func newBuild(ctx context.Context, o Options) (*build, error) {
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
		return nil, errors.New("compression zstd needs media-types oci: Docker's media types have no zstd layer; set media-types: oci or compression: gzip")
	}
	if o.Context == "" {
		o.Context = "."
	}
	if o.Dockerfile == "" {
		o.Dockerfile = filepath.Join(o.Context, "Dockerfile")
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
		return nil, fmt.Errorf("reading the Dockerfile %s: %w (set dockerfile to its path)", o.Dockerfile, err)
	}
	bd := &build{o: o}
	if bd.df, err = dockerfile.Parse(o.Dockerfile, src); err != nil {
		return nil, err
	}
	if o.InsecurePull {
		if err := bd.insecurePull(); err != nil {
			return nil, err
		}
	}
	if bd.tags, err = destinations(ctx, o); err != nil {
		return nil, err
	}
	if o.Push && len(bd.tags) == 0 {
		return nil, errors.New("no destination: set tags (full references such as registry.example.com/app:1.0) or image (a repository), or push: false with tar-path or oci-layout-path")
	}
	if bd.ctxDir, err = layer.OpenContext(o.Context, o.Dockerfile); err != nil {
		return nil, err
	}
	var targets []name.Registry
	for _, t := range bd.tags {
		targets = append(targets, t.Context().Registry)
	}
	var cacheRepo name.Repository
	if o.Cache {
		repo := o.CacheRepo
		if repo == "" {
			if len(bd.tags) == 0 {
				return nil, errors.New("cache: true needs cache-repo or a destination to derive <image>/cache from")
			}
			repo = bd.tags[0].Context().Name() + "/cache"
		}
		if cacheRepo, err = o.Registry.Repo(repo); err != nil {
			return nil, fmt.Errorf("cache-repo %q: %w", repo, err)
		}
		targets = append(targets, cacheRepo.Registry)
	}
	if bd.links, err = newLinks(ctx, o.Registry, targets); err != nil {
		return nil, err
	}
	if o.Cache {
		bd.cache = &cache{repo: cacheRepo, links: bd.links, log: o.Log, now: o.Now, ttl: o.CacheTTL, tempDir: o.TempDir}
	}
	return bd, nil
}

// insecurePull is kaniko's --insecure-pull: the registries the build reads
// base images from (FROM and COPY --from images of the stages the target
// needs) may use plain HTTP.
func (bd *build) insecurePull() error {
	plan, err := dockerfile.NewPlan(bd.df, dockerfile.Options{BuildArgs: bd.o.BuildArgs, Target: bd.o.Target})
	if err != nil {
		return err
	}
	var hosts []string
	for _, img := range plan.Images() {
		if r, err := name.ParseReference(img, name.WeakValidation); err == nil {
			hosts = append(hosts, r.Context().RegistryStr())
		}
	}
	bd.o.Registry.AllowInsecure(hosts...)
	return nil
}

// close removes the build's temporary files, once the roots are gone.
func (bd *build) close() {
	if bd.cache != nil {
		bd.cache.wait()
	}
	for _, l := range bd.temps {
		_ = l.Close()
	}
	bd.removing.Wait()
}

// platform builds the target for one platform (empty: linux/amd64) and
// assembles its image.
func (bd *build) platform(ctx context.Context, p string) (v1.Image, *builder, error) {
	var plat v1.Platform
	if p != "" {
		var err error
		if plat, err = dockerfile.ParsePlatform(p); err != nil {
			return nil, nil, fmt.Errorf("platforms: %w", err)
		}
	}
	plan, err := dockerfile.NewPlan(bd.df, dockerfile.Options{BuildArgs: bd.o.BuildArgs, Target: bd.o.Target, TargetPlatform: plat,
		BuildPlatform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}})
	if err != nil {
		return nil, nil, err
	}
	b := &builder{build: bd, plan: plan, stages: map[*dockerfile.Stage]*stageOut{}, images: map[string]v1.Image{},
		imageRoots: map[v1.Hash]string{}, baseTrees: map[v1.Hash]*layer.Tree{}}
	states, err := plan.Run(ctx, dockerfile.Hooks{Base: b.base, Op: b.op, Stage: func(_ context.Context, st *dockerfile.State) error { b.out(st); return nil }})
	b.cleanup()
	if bd.cache != nil {
		bd.cache.wait()
	}
	if err != nil {
		return nil, b, err
	}
	if unused := plan.UnusedBuildArgs(); len(unused) > 0 {
		bd.o.Log.Warn("build args not consumed by any ARG of the built stages", "args", strings.Join(unused, ","))
	}
	img, err := b.assemble(states[plan.Target], bd.tags)
	return img, b, err
}

// cleanup removes the stages' unpacked roots in the background (on a
// disk, thousands of unlinks take about a second): the image is assembled
// and pushed meanwhile, and Run waits for it before returning.
func (b *builder) cleanup() {
	roots := b.roots
	b.roots = nil
	if len(roots) == 0 {
		return
	}
	b.removing.Add(1)
	go func() {
		defer b.removing.Done()
		for _, r := range roots {
			if err := removeRoot(r); err != nil {
				b.o.Log.Warn("removing a temporary root", "dir", r, "error", err)
			}
		}
	}()
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
