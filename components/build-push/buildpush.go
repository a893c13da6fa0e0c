// Package buildpush builds an image from a Dockerfile without a Docker
// daemon and pushes it: BuildKit's parser and copy rules for the semantics,
// layers made from the build context, base images never unpacked for
// builds without RUN, RUN in a sandbox inside the stage's own root, a layer
// cache in a registry, and the push of every destination.
//
// The files follow the build: buildpush.go (Options, Result, Run),
// build.go (one build and each platform's builder), destinations.go (tags),
// base.go (base images, mirrors, registry connections), steps.go (the
// filesystem steps and their cache keys), copy.go (COPY and ADD), run.go
// (RUN), mounts.go and cachemount.go (RUN --mount), fs.go and rootfs.go
// (what the builder knows of a stage's files), user.go (users and groups),
// cache.go (the registry layer cache), assemble.go (the image), output.go
// (push, tarball, OCI layout).
package buildpush

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
	// RefFile gets Result.Ref and a newline (bump's images-from).
	RefFile  string
	Git      gitmeta.Context
	Registry *registry.Client
	Log      *slog.Logger
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
	// Output makes the writer of one RUN's output, each of its lines after
	// prefix (the Dockerfile line: "#12 | "); the platform layer masks it
	// and keeps it from issuing commands. Nil discards the output.
	Output func(prefix string) io.WriteCloser
	// InsecurePull is kaniko's --insecure-pull: the registries base images
	// come from (FROM and COPY --from of the stages the target needs) may
	// use plain HTTP.
	InsecurePull bool

	memory memoryScratch // tests: another tmpfs than /dev/shm
}

// Result of a build.
type Result struct {
	Digest string
	// Image is repo@digest in the first destination.
	Image string
	Tags  []string
	// Version is the version tag the build names (gitmeta.Version: 1.4.2,
	// mr-7, the short SHA); with explicit Tags, the first one's tag.
	Version string
	// Ref is <first destination's repository>:<Version>@<Digest>: what a
	// GitOps bump pins.
	Ref string
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
		"version":  r.Version,
		"ref":      r.Ref,
	}
}

// Run builds and pushes.
func Run(ctx context.Context, o Options) (res Result, err error) {
	bd, err := newBuild(ctx, o)
	if err != nil {
		return res, err
	}
	defer bd.close()
	platforms := bd.o.Platforms
	if len(platforms) == 0 {
		platforms = []string{bd.o.Platform}
	}
	var art artifact
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img, b, err := bd.platform(ctx, p)
		if b != nil {
			res.LayersBuilt += b.built
			res.CacheHits += b.hits
			res.BaseReads += b.baseRead.Load()
		}
		if err != nil {
			return res, err
		}
		art.img = img
		cf, err := img.ConfigFile()
		if err != nil {
			return res, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}}})
	}
	if len(adds) > 1 {
		mt := types.OCIImageIndex
		if bd.o.Format == layer.Docker {
			mt = types.DockerManifestList
		}
		art = artifact{idx: mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), adds...)}
	}
	digest, err := art.digest()
	if err != nil {
		return res, fmt.Errorf("computing the image digest: %w", err)
	}
	res.Digest = digest.String()
	if err := bd.write(ctx, art); err != nil {
		return res, err // no tag or image output claims a push that failed
	}
	for _, t := range bd.tags {
		res.Tags = append(res.Tags, t.String())
	}
	res.Version = version(bd.o, bd.tags)
	if len(bd.tags) > 0 {
		res.Image = bd.tags[0].Context().Name() + "@" + res.Digest
		res.Ref = bd.tags[0].Context().Name() + ":" + res.Version + "@" + res.Digest
	}
	res.Metadata = map[string]any{
		"containerimage.digest": res.Digest,
		"image.name":            strings.Join(res.Tags, ","),
		"layers.built":          res.LayersBuilt,
		"layers.cached":         res.CacheHits,
	}
	if err := writeFiles(bd.o, res, bd.tags); err != nil {
		return res, err
	}
	return res, nil
}

// Markdown summarises the result for the step summary.
func (r Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### build-push\n\n| | |\n|---|---|\n| digest | `%s` |\n", r.Digest)
	if r.Ref != "" {
		fmt.Fprintf(&b, "| ref | `%s` |\n", r.Ref)
	}
	for _, t := range r.Tags {
		fmt.Fprintf(&b, "| tag | `%s` |\n", t)
	}
	fmt.Fprintf(&b, "| layers built | %d |\n| layers from the cache | %d |\n", r.LayersBuilt, r.CacheHits)
	return b.String()
}
