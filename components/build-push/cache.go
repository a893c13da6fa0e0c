package buildpush

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hoist-ci/hoist/internal/layer"
)

// cache keeps built layers in a registry repository: one tiny image per
// cache key (tag = the key), holding the layer. A hit is a remote layer of
// the cache repository, so the push mounts it instead of uploading it.
type cache struct {
	repo    name.Repository
	links   *links
	log     *slog.Logger
	now     func() time.Time
	ttl     time.Duration // entries older are ignored; 0: no limit
	tempDir string
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    int
	// stored are the layers written to the cache, by digest: the push of
	// the image mounts them from there instead of uploading them again.
	stored map[v1.Hash]name.Digest
}

// Manifest annotations of a cache entry: when it was written and its
// layer's diff ID, so a hit needs the manifest alone (no config read).
const (
	annotationCreated = "dev.hoist.cache.created"
	annotationDiffID  = "dev.hoist.cache.diffid"
)

func (c *cache) lookup(ctx context.Context, key string) (v1.Layer, bool) {
	ref := c.repo.Tag(key)
	desc, err := remote.Get(ref, c.links.forTarget()...)
	if err != nil {
		c.log.Debug("cache miss", "key", key)
		return nil, false
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil || len(m.Layers) != 1 {
		return nil, false
	}
	created, cerr := time.Parse(time.RFC3339Nano, m.Annotations[annotationCreated])
	diffID, derr := v1.NewHash(m.Annotations[annotationDiffID])
	if cerr != nil || derr != nil {
		// An entry written before the annotations: read its config.
		return c.lookupByConfig(key, desc)
	}
	if c.ttl > 0 && c.now().Sub(created) > c.ttl {
		c.log.Info("cache entry expired", "key", key, "created", created.Format(time.RFC3339))
		return nil, false
	}
	ld := m.Layers[0]
	ldRef := c.repo.Digest(ld.Digest.String())
	l, err := remote.Layer(ldRef, c.links.forTarget()...)
	if err != nil {
		return nil, false
	}
	c.log.Info("cache hit", "key", key)
	return &remote.MountableLayer{Layer: &cachedLayer{Layer: l, desc: ld, diffID: diffID}, Reference: ldRef}, true
}

func (c *cache) lookupByConfig(key string, desc *remote.Descriptor) (v1.Layer, bool) {
	img, err := desc.Image()
	if err != nil {
		return nil, false
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, false
	}
	if c.ttl > 0 && c.now().Sub(cf.Created.Time) > c.ttl {
		c.log.Info("cache entry expired", "key", key, "created", cf.Created.Time.Format(time.RFC3339))
		return nil, false
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return nil, false
	}
	c.log.Info("cache hit", "key", key)
	return layers[0], true
}

// cachedLayer is a cache entry's layer described by its manifest: digest,
// size, media type and (from the annotation) diff ID are known without a
// request; the content is fetched only if it is read (a later RUN that
// unpacks the stage).
type cachedLayer struct {
	v1.Layer
	desc   v1.Descriptor
	diffID v1.Hash
}

func (l *cachedLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }

func (l *cachedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func (l *cachedLayer) Size() (int64, error) { return l.desc.Size, nil }

func (l *cachedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// store writes a layer to the cache in the background; failures only warn.
func (c *cache) store(key string, l v1.Layer) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.write(key, l); err != nil {
			c.mu.Lock()
			c.errs++
			c.mu.Unlock()
			c.log.Warn("writing the layer cache failed; the build goes on", "repo", c.repo.String(), "error", err)
			return
		}
		if d, err := l.Digest(); err == nil {
			c.mu.Lock()
			if c.stored == nil {
				c.stored = map[v1.Hash]name.Digest{}
			}
			c.stored[d] = c.repo.Digest(d.String())
			c.mu.Unlock()
		}
	}()
}

func (c *cache) write(key string, l v1.Layer) error {
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l})
	if err != nil {
		return err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	now := c.now().UTC()
	cf.Created = v1.Time{Time: now}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	diffID, err := l.DiffID()
	if err != nil {
		return err
	}
	img = mutate.Annotations(img, map[string]string{annotationCreated: now.Format(time.RFC3339Nano), annotationDiffID: diffID.String()}).(v1.Image)
	ref := c.repo.Tag(key)
	if err := remote.Write(ref, img, c.links.forTarget()...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

func (c *cache) wait() { c.wg.Wait() }

// mountable wraps a layer the cache holds so that pushing it to another
// repository of the same registry mounts it (no bytes sent twice: kaniko
// #2979). Call after wait.
func (c *cache) mountable(l v1.Layer) v1.Layer {
	d, err := l.Digest()
	if err != nil {
		return l
	}
	c.mu.Lock()
	ref, ok := c.stored[d]
	c.mu.Unlock()
	if !ok {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: ref}
}

// A base image's file list (its entries without content, but for
// /etc/passwd and /etc/group) is kept in the cache repository under
// base-<digest>: a COPY or WORKDIR that misses the cache over that base
// reads it instead of the base's layers.
func baseIndexTag(d v1.Hash) string { return "base-" + d.Hex }

// baseIndex reads a base image's file list from the cache.
func (c *cache) baseIndex(ctx context.Context, d v1.Hash) (*layer.Tree, bool) {
	ref := c.repo.Tag(baseIndexTag(d))
	img, err := remote.Image(ref, c.links.forTarget(remote.WithContext(ctx))...)
	if err != nil {
		return nil, false
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return nil, false
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if hdr, err := tr.Next(); err != nil || hdr.Name != "index.json" {
		return nil, false
	}
	t := layer.NewTree()
	data, err := io.ReadAll(io.LimitReader(tr, 256<<20))
	if err != nil || json.Unmarshal(data, t) != nil {
		c.log.Warn("the base image's file list in the cache is unreadable; reading the base", "tag", ref.String())
		return nil, false
	}
	return t, true
}

// storeBaseIndex writes a base image's file list to the cache in the
// background; failures only warn.
func (c *cache) storeBaseIndex(d v1.Hash, t *layer.Tree) {
	data, err := json.Marshal(t)
	if err != nil {
		c.log.Warn("writing the base image's file list to the cache", "error", err)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		l, err := layer.Build([]layer.Entry{{Name: "index.json", Mode: 0o644, Size: int64(len(data)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}}, layer.Gzip, layer.OCI, c.tempDir)
		if err == nil {
			defer l.Close()
			var img v1.Image
			if img, err = mutate.Append(empty.Image, mutate.Addendum{Layer: l}); err == nil {
				img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
				err = remote.Write(c.repo.Tag(baseIndexTag(d)), img, c.links.forTarget()...)
			}
		}
		if err != nil {
			c.log.Warn("writing the base image's file list to the cache failed; the build goes on", "repo", c.repo.String(), "error", err)
		}
	}()
}
