package buildpush

import (
	"context"
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hoist-ci/hoist/internal/layer"
)

// stageFS is what the builder knows of a stage's filesystem: once a RUN
// needed it, the stage's unpacked root directory, which every later layer
// is applied to and which then answers every question; before that, a
// tree of entries made from the base image's layers (headers only) and
// the stage's layers, built the first time a step needs it (a COPY into
// an existing directory, a WORKDIR, a user name). A warm build whose
// steps all come from the cache never builds it.
type stageFS struct {
	root string
	tree *layer.Tree
	// treeN is how many of the stage's layers the tree holds.
	treeN int
	// known are the entries of the layers this build made (a layer from
	// the cache is read when the tree needs it).
	known map[v1.Layer][]layer.Entry
}

func newStageFS() *stageFS { return &stageFS{known: map[v1.Layer][]layer.Entry{}} }

// inherit is the filesystem of a stage FROM this one: the same tree (a
// copy), the same knowledge of layers; the root is handed over by the
// caller when nothing else reads it.
func (s *stageFS) inherit() *stageFS {
	c := &stageFS{treeN: s.treeN, known: maps.Clone(s.known)}
	if s.tree != nil {
		c.tree = s.tree.Clone()
	}
	return c
}

// record notes the entries of a layer this build made.
func (s *stageFS) record(l v1.Layer, entries []layer.Entry) {
	s.known[l] = entries
}

// identityFiles are the files whose content a tree keeps: --chown, USER
// and WORKDIR look names up in them.
func identityFiles(name string, size int64) bool {
	return (name == "etc/passwd" || name == "etc/group") && size < 8<<20
}

// view is the stage as a step sees it: the unpacked root, or the tree
// brought up to date (the base image's layers read once, headers only).
func (b *builder) view(ctx context.Context, out *stageOut) (layer.View, error) {
	if out.fs.root != "" {
		return layer.DirView{Root: out.fs.root}, nil
	}
	s := out.fs
	if s.tree == nil {
		s.tree = layer.NewTree()
		s.treeN = 0
		if out.base != nil {
			t, err := b.baseTree(ctx, out.base)
			if err != nil {
				return nil, err
			}
			s.tree = t
		}
	}
	for ; s.treeN < len(out.layers); s.treeN++ {
		l := out.layers[s.treeN]
		if entries, ok := s.known[l]; ok {
			s.tree.Apply(entries)
			continue
		}
		if err := applyLayer(ctx, s.tree, l); err != nil {
			return nil, fmt.Errorf("reading a layer of the stage: %w", err)
		}
	}
	return s.tree, nil
}

// baseTree is a base image's file list: from the layer cache when it
// holds it, else read from the base's layers (headers only) and stored
// there for the next build.
func (b *builder) baseTree(ctx context.Context, img v1.Image) (*layer.Tree, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if t, ok := b.baseTrees[d]; ok {
		return t.Clone(), nil
	}
	t, err := b.readBaseTree(ctx, img, d)
	if err != nil {
		return nil, err
	}
	b.baseTrees[d] = t
	return t.Clone(), nil
}

func (b *builder) readBaseTree(ctx context.Context, img v1.Image, d v1.Hash) (*layer.Tree, error) {
	if b.cache != nil {
		if t, ok := b.cache.baseIndex(ctx, d); ok {
			b.o.Log.Info("the base image's file list from the cache", "base", d.String(), "entries", t.Len())
			return t, nil
		}
	}
	b.baseRead.Add(1)
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the base image's layers: %w", err)
	}
	b.o.Log.Info("reading the base image's file list (headers only; COPY --link skips it)", "layers", len(layers))
	t := layer.NewTree()
	for _, l := range layers {
		if err := applyLayer(ctx, t, l); err != nil {
			return nil, fmt.Errorf("reading the base image's file list: %w", err)
		}
	}
	if b.cache != nil {
		b.cache.storeBaseIndex(d, t)
	}
	return t, nil
}

func applyLayer(ctx context.Context, t *layer.Tree, l v1.Layer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return t.ApplyTar(rc, identityFiles)
}

// readFile returns a file of the stage (links followed inside it), or
// false when it has none.
func (b *builder) readFile(ctx context.Context, out *stageOut, p string) ([]byte, bool, error) {
	if out.fs.root != "" {
		return out.fs.read(ctx, p)
	}
	v, err := b.view(ctx, out)
	if err != nil {
		return nil, false, err
	}
	return v.(*layer.Tree).ReadFile(p)
}

// read returns a file of the stage's unpacked root or of its tree.
func (s *stageFS) read(_ context.Context, p string) ([]byte, bool, error) {
	if s.root != "" {
		return rootRead(s.root, p)
	}
	if s.tree != nil {
		return s.tree.ReadFile(p)
	}
	return nil, false, nil
}
