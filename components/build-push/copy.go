package buildpush

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/layer"
)

// copySource is one source of a COPY or ADD, resolved as far as it can
// be without the stage: the tree it is read from (nil for a stage or an
// image, materialized only when the layer is built) and its path there.
type copySource struct {
	src  layer.Source
	path string
	// unpack: ADD extracts it when it is a local archive.
	unpack bool
}

// copy is COPY or ADD. Its cache key covers the instruction, the
// variables it used and what its sources hold — the context's files, the
// source stage's own key, the source image's digest — so a warm build
// finds its layer without reading the stage or the source stage.
func (b *builder) copy(ctx context.Context, st *dockerfile.State, out *stageOut, c *dockerfile.Copy) error {
	where := fmt.Sprintf("%s:%d", b.plan.File.Name, c.Line)
	srcs, content, err := b.copySources(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	key := cacheKey(out.key, c.Instruction, c.Vars, content)
	return b.fileStep(ctx, st, out, copyHistory(c), key, func() ([]layer.Entry, error) {
		entries, err := b.planCopy(ctx, out, c, srcs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return entries, nil
	})
}

// copyHistory is the image history of a COPY or ADD as BuildKit writes
// it: the flags --chown and --chmod, the sources and the destination as
// the instruction gives them (after expansion).
func copyHistory(c *dockerfile.Copy) string {
	var s strings.Builder
	if c.Add {
		s.WriteString("ADD")
	} else {
		s.WriteString("COPY")
	}
	if c.Chown != "" {
		s.WriteString(" --chown=" + c.Chown)
	}
	if c.Chmod != "" {
		s.WriteString(" --chmod=" + c.Chmod)
	}
	for _, src := range c.Sources {
		s.WriteString(" " + src)
	}
	for _, in := range c.Inline {
		s.WriteString(" <<" + in.Path)
	}
	s.WriteString(" " + c.DestText)
	return s.String()
}

// copySources lists the sources in BuildKit's order (paths, then inline
// documents) and digests what they hold for the cache key.
func (b *builder) copySources(ctx context.Context, c *dockerfile.Copy) ([]copySource, v1.Hash, error) {
	h := sha256.New()
	var srcs []copySource
	var local []layer.CopySpec
	unpack := c.Add
	if c.Unpack != nil {
		unpack = *c.Unpack
	}
	for _, s := range c.Sources {
		switch {
		case c.FromStage != nil:
			srcs = append(srcs, copySource{path: s})
		case c.FromImage != "":
			srcs = append(srcs, copySource{path: s})
		case c.Add && (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")):
			name, data, mtime, err := layer.Fetch(ctx, b.o.HTTP, s, c.Checksum)
			if err != nil {
				return nil, v1.Hash{}, err
			}
			m := layer.NewMemSource()
			m.Add(name, data, 0o600, mtime)
			// Remote files are not unpacked unless --unpack says so.
			cs := copySource{src: m, path: name, unpack: c.Unpack != nil && *c.Unpack}
			srcs = append(srcs, cs)
			local = append(local, layer.CopySpec{Source: m, Path: name, Dest: c.DestPath(), Unpack: cs.unpack})
		default:
			if err := checkSource(s); err != nil {
				return nil, v1.Hash{}, err
			}
			cs := copySource{src: b.ctxDir, path: s, unpack: unpack}
			srcs = append(srcs, cs)
			local = append(local, layer.CopySpec{Source: b.ctxDir, Path: s, Dest: c.DestPath(), Unpack: unpack})
		}
	}
	for _, in := range c.Inline {
		m := layer.NewMemSource()
		m.Add(in.Path, []byte(in.Data), 0o644, time.Time{})
		srcs = append(srcs, copySource{src: m, path: in.Path})
		local = append(local, layer.CopySpec{Source: m, Path: in.Path, Dest: c.DestPath()})
	}
	switch {
	case c.FromStage != nil:
		src := b.stages[c.FromStage]
		if src == nil {
			return nil, v1.Hash{}, fmt.Errorf("COPY --from=%s: the stage was not built", c.FromStage.Ref())
		}
		fmt.Fprintf(h, "stage\x00%s\x00", src.key)
	case c.FromImage != "":
		img, err := b.resolve(ctx, c.FromImage, b.plan.Target.Platform)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("COPY --from=%s: %w", c.FromImage, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		fmt.Fprintf(h, "image\x00%s\x00", d)
	}
	if len(local) > 0 {
		// What the sources hold: their entries as copied into nothing
		// (times aside, as BuildKit's cache keys leave them out).
		p := layer.NewPlanner(layer.Empty{})
		for _, s := range local {
			if err := p.Copy(s); err != nil {
				return nil, v1.Hash{}, b.copyError(s.Path, err)
			}
		}
		d, err := layer.ContentKey(p.Entries())
		if err != nil {
			return nil, v1.Hash{}, err
		}
		fmt.Fprintf(h, "local\x00%s\x00", d)
	}
	return srcs, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkSource refuses a context source that climbs out with "..":
// BuildKit would clamp it to the context's root, which is never what the
// Dockerfile means.
func checkSource(s string) error {
	if p := path.Clean(s); p == ".." || strings.HasPrefix(p, "../") {
		return &layer.SafetyError{Source: s, Reason: "points above the context with ../"}
	}
	return nil
}

// copyError names a source the context does not have, and why.
func (b *builder) copyError(src string, err error) error {
	var nf *layer.NotFoundError
	if !errors.As(err, &nf) {
		return err
	}
	msg := fmt.Sprintf("source %q not found in the build context %s", src, b.ctxDir.Root)
	if why := b.ctxDir.Why(src); why != "" {
		msg += ": " + why
	} else if strings.HasPrefix(src, "/") {
		msg += " (a source starting with / is read from the context's root)"
	}
	return errors.New(msg)
}

// planCopy computes the layer of a COPY or ADD against the stage (or, for
// COPY --link, against nothing, as BuildKit's merged layer is made).
func (b *builder) planCopy(ctx context.Context, out *stageOut, c *dockerfile.Copy, srcs []copySource) ([]layer.Entry, error) {
	if c.Link && c.Chown != "" && chownByName(c.Chown) {
		return nil, fmt.Errorf("--chown=%s: user and group names cannot be resolved with --link; use a numeric uid[:gid]", c.Chown)
	}
	var view layer.View = layer.Empty{}
	if !c.Link || c.Chmod != "" {
		v, err := b.view(ctx, out)
		if err != nil {
			return nil, err
		}
		view = v
	}
	owner, err := b.owner(ctx, out, c.Chown, "--chown")
	if err != nil {
		return nil, err
	}
	spec := layer.CopySpec{Dest: c.DestPath(), Owner: owner, Excludes: c.Excludes, DirMode: 0o755}
	if c.Chmod != "" {
		m, err := dockerfile.ParseChmod(c.Chmod)
		if err != nil {
			return nil, err
		}
		spec.Chmod = func(cur fs.FileMode) fs.FileMode { return m.Apply(cur, cur.IsDir()) }
		if m.Octal() {
			spec.DirMode = m.Apply(0, true).Perm()
		}
	}
	var from layer.Source
	switch {
	case c.FromStage != nil:
		if from, err = b.stageSource(ctx, c.FromStage); err != nil {
			return nil, fmt.Errorf("COPY --from=%s: %w", c.FromStage.Ref(), err)
		}
	case c.FromImage != "":
		if from, err = b.imageSource(ctx, c.FromImage); err != nil {
			return nil, fmt.Errorf("COPY --from=%s: %w", c.FromImage, err)
		}
	}
	p := layer.NewPlanner(view)
	for _, s := range srcs {
		cs := spec
		cs.Source, cs.Path, cs.Unpack = s.src, s.path, s.unpack
		if cs.Source == nil {
			cs.Source = from
		}
		if err := p.Copy(cs); err != nil {
			var nf *layer.NotFoundError
			if errors.As(err, &nf) && from != nil {
				return nil, fmt.Errorf("COPY --from: %s not found in the source stage or image", s.path)
			}
			return nil, b.copyError(s.path, err)
		}
	}
	return p.Entries(), nil
}

// chownByName reports whether a --chown names a user or group.
func chownByName(spec string) bool {
	for _, part := range strings.SplitN(spec, ":", 2) {
		for _, r := range part {
			if r < '0' || r > '9' {
				return true
			}
		}
	}
	return false
}

// stageSource is another stage's filesystem for COPY --from and
// RUN --mount=from: its unpacked root (unpacked now when no RUN needed it).
func (b *builder) stageSource(ctx context.Context, s *dockerfile.Stage) (layer.Source, error) {
	src := b.stages[s]
	if src == nil {
		return nil, fmt.Errorf("the stage was not built")
	}
	if err := b.materialize(ctx, src); err != nil {
		return nil, err
	}
	return layer.DirView{Root: src.fs.root}, nil
}

// imageSource is an image's filesystem for COPY --from=<image> and
// RUN --mount=from=<image>, unpacked once per build.
func (b *builder) imageSource(ctx context.Context, ref string) (layer.Source, error) {
	img, err := b.resolve(ctx, ref, b.plan.Target.Platform)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if root, ok := b.imageRoots[d]; ok {
		return layer.DirView{Root: root}, nil
	}
	out := &stageOut{base: img, fs: newStageFS()}
	if err := b.materialize(ctx, out); err != nil {
		return nil, err
	}
	b.imageRoots[d] = out.fs.root
	return layer.DirView{Root: out.fs.root}, nil
}
