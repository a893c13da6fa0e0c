package buildpush

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/registry"
)

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
	opts := b.links.forBase(remote.WithPlatform(plat))
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
