package buildpush

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/layer"
)

// op performs a filesystem instruction of a stage.
func (b *builder) op(ctx context.Context, st *dockerfile.State, op dockerfile.Op) error {
	out := b.out(st)
	switch c := op.(type) {
	case *dockerfile.Workdir:
		return b.workdir(ctx, st, out, c)
	case *dockerfile.Copy:
		return b.copy(ctx, st, out, c)
	case *dockerfile.Run:
		return b.run(ctx, st, out, c)
	default:
		return fmt.Errorf("unsupported operation %T", op)
	}
}

// fileStep makes the layer of a COPY, ADD or WORKDIR: from the cache when
// key hits (nothing about the stage is read then), else from the entries
// plan computes against the stage.
func (b *builder) fileStep(ctx context.Context, st *dockerfile.State, out *stageOut, text, key string, plan func() ([]layer.Entry, error)) error {
	out.key = key
	var l v1.Layer
	var known []layer.Entry
	if b.cache != nil {
		if cl, ok := b.cache.lookup(ctx, key); ok {
			l = cl
			b.hits++
		}
	}
	if l == nil {
		entries, err := plan()
		if err != nil {
			return err
		}
		if b.o.Epoch != nil {
			layer.Clamp(entries, *b.o.Epoch)
		}
		built, err := layer.Build(entries, b.o.Compression, b.o.Format, b.o.TempDir)
		if err != nil {
			return fmt.Errorf("building the layer of %q: %w", text, err)
		}
		b.temps = append(b.temps, built)
		b.built++
		l, known = built, entries
		if b.cache != nil {
			b.cache.store(key, built)
		}
	}
	if err := b.addLayer(st, out, l, text); err != nil {
		return err
	}
	if known != nil {
		out.fs.record(l, known)
	}
	if err := b.keepRoot(ctx, out, l); err != nil {
		return fmt.Errorf("%s: %w", text, err)
	}
	return nil
}

// workdir is WORKDIR: BuildKit makes the directory, and its missing
// parents, 0755 and owned by the USER in effect, as a layer of its own
// (none when it exists).
func (b *builder) workdir(ctx context.Context, st *dockerfile.State, out *stageOut, c *dockerfile.Workdir) error {
	text := "WORKDIR " + c.Path
	if c.Path == "/" {
		st.AddEmptyHistory(text)
		return nil
	}
	key := cacheKey(out.key, text+"\x00user="+c.User, nil, v1.Hash{})
	return b.fileStep(ctx, st, out, text, key, func() ([]layer.Entry, error) {
		v, err := b.view(ctx, out)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: WORKDIR %s: %w", b.plan.File.Name, c.Line, c.Path, err)
		}
		owner, err := b.owner(ctx, out, c.User, "USER")
		if err != nil {
			// BuildKit creates it as root when the user is not found.
			b.o.Log.Debug("WORKDIR: the USER cannot be resolved; the directory is owned by root", "user", c.User, "error", err)
			owner = nil
		}
		p := layer.NewPlanner(v)
		if err := p.Mkdir(c.Path, owner); err != nil {
			return nil, fmt.Errorf("%s:%d: WORKDIR %s: %w", b.plan.File.Name, c.Line, c.Path, err)
		}
		return p.Entries(), nil
	})
}

// cacheKey chains a step's key to its parent's: the instruction, the
// variables it used and a digest of its content.
func cacheKey(parent, instruction string, vars map[string]string, content v1.Hash) string {
	h := sha256.New()
	fmt.Fprintf(h, "hoist-cache-v2\x00%s\x00%s\x00", parent, instruction)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, vars[k])
	}
	fmt.Fprintf(h, "%s", content.String())
	return hex.EncodeToString(h.Sum(nil))
}
