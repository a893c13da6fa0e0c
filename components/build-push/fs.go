package buildpush

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-ci/hoist/internal/layer"
)

// stageFS is a stage's filesystem as far as the builder knows it: a base
// image (read only when a file of it is needed: COPY --from, a user name)
// and the layers this build added, as entries — or, once a RUN needed it,
// the stage's unpacked root directory, which every later layer is applied
// to and which then answers every question.
type stageFS struct {
	root   string // the unpacked root, when there is one
	parent *stageFS
	image  v1.Image // the base image, nil for scratch or a stage base
	own    []layer.Entry

	once sync.Once
	base map[string]layer.Entry // the image's files, read once
	err  error
	// flat is the last flattened view (nil until files is called; reset
	// when this build adds entries).
	flat   map[string]layer.Entry
	onRead func() // counts base reads (tests assert COPY-only builds do none)
}

// add records the entries of a layer this build made.
func (s *stageFS) add(entries []layer.Entry) {
	s.own = append(s.own, entries...)
	s.flat = nil
}

// known looks a path up among the entries this build wrote to the stage
// (and its base stages), without reading a base image; the latest wins.
func (s *stageFS) known(p string) (layer.Entry, bool) {
	p = strings.Trim(p, "/")
	if s.root != "" {
		return rootEntry(s.root, p)
	}
	for f := s; f != nil; f = f.parent {
		for i := len(f.own) - 1; i >= 0; i-- {
			if f.own[i].Name == p {
				return f.own[i], true
			}
		}
	}
	return layer.Entry{}, false
}

// hasImage reports whether the stage's chain starts from an image.
func (s *stageFS) hasImage() bool {
	if s.root != "" {
		return false
	}
	for f := s; f != nil; f = f.parent {
		if f.image != nil {
			return true
		}
	}
	return false
}

// existing looks a directory up for a layer's parent entries: in the
// flattened filesystem when it was read already, else among this build's
// own entries (never reading a base for it).
func (s *stageFS) existing(p string) (layer.Entry, bool) {
	if s.root != "" {
		return rootEntry(s.root, strings.Trim(p, "/"))
	}
	if s.flat != nil {
		e, ok := s.flat[strings.Trim(p, "/")]
		return e, ok
	}
	return s.known(p)
}

func (s *stageFS) knownDir(p string) bool {
	e, ok := s.known(p)
	return ok && e.Mode.IsDir()
}

// files flattens the filesystem into path → entry. A base image's layers
// are read once per stage chain; this build's entries are laid over them.
func (s *stageFS) files(ctx context.Context) (map[string]layer.Entry, error) {
	if s.root != "" {
		return rootFiles(ctx, s.root)
	}
	m := map[string]layer.Entry{}
	if s.parent != nil {
		pm, err := s.parent.files(ctx)
		if err != nil {
			return nil, err
		}
		for k, v := range pm {
			m[k] = v
		}
	}
	if s.image != nil {
		s.once.Do(func() {
			if s.onRead != nil {
				s.onRead()
			}
			base := map[string]layer.Entry{}
			s.err = flattenImage(ctx, s.image, base)
			s.base = base
		})
		if s.err != nil {
			return nil, s.err
		}
		for k, v := range s.base {
			m[k] = v
		}
	}
	for _, e := range s.own {
		m[e.Name] = e
	}
	s.flat = m
	return m, nil
}

func flattenImage(ctx context.Context, img v1.Image, m map[string]layer.Entry) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading the base image's layers: %w", err)
	}
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("reading a base layer: %w", err)
		}
		err = applyLayer(rc, m)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func applyLayer(r io.Reader, m map[string]layer.Entry) error {
	tr := tar.NewReader(bufio.NewReader(r))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading a base layer: %w", err)
		}
		name := strings.Trim(path.Clean("/"+hdr.Name), "/")
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if base == ".wh..wh..opq" {
			for k := range m {
				if strings.HasPrefix(k, dir+"/") {
					delete(m, k)
				}
			}
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			gone := path.Join(dir, strings.TrimPrefix(base, ".wh."))
			for k := range m {
				if k == gone || strings.HasPrefix(k, gone+"/") {
					delete(m, k)
				}
			}
			continue
		}
		if name == "" {
			continue
		}
		e := layer.Entry{Name: name, UID: hdr.Uid, GID: hdr.Gid, ModTime: hdr.ModTime}
		perm := layer.PermFromTar(hdr.Mode) // keeps setuid/setgid/sticky (COPY --from=base /bin/su)
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.Mode = fs.ModeDir | perm
		case tar.TypeSymlink:
			e.Mode = fs.ModeSymlink | 0o777
			e.Linkname = hdr.Linkname
		case tar.TypeLink:
			target, ok := m[strings.Trim(path.Clean("/"+hdr.Linkname), "/")]
			if !ok {
				continue
			}
			target.Name = name
			e = target
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("reading %s from a base layer: %w", name, err)
			}
			e.Mode = perm
			e.Size = int64(len(data))
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		default:
			continue
		}
		m[name] = e
	}
}

// read returns a file's content (following no links), or false.
func (s *stageFS) read(ctx context.Context, p string) ([]byte, bool, error) {
	if s.root != "" {
		return rootRead(s.root, p)
	}
	m, err := s.files(ctx)
	if err != nil {
		return nil, false, err
	}
	e, ok := m[strings.Trim(path.Clean("/"+p), "/")]
	if !ok || e.Open == nil {
		return nil, false, nil
	}
	rc, err := e.Open()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return data, true, err
}

// copyFrom lists the entries COPY --from=<this stage> <src> <dest> writes.
func (s *stageFS) copyFrom(ctx context.Context, srcs []string, o layer.CopyOptions) ([]layer.Entry, error) {
	m, err := s.files(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var out [][]layer.Entry
	var matched []string
	for _, src := range srcs {
		p := strings.Trim(path.Clean("/"+src), "/")
		var hits []string
		if strings.ContainsAny(p, "*?[") {
			for _, n := range names {
				if ok, _ := path.Match(p, n); ok {
					hits = append(hits, n)
				}
			}
		} else if _, ok := m[p]; ok || p == "" {
			hits = []string{p}
		}
		if len(hits) == 0 {
			return nil, fmt.Errorf("COPY --from: %s not found in the source stage or image", src)
		}
		matched = append(matched, hits...)
	}
	destDir := o.DestDir || len(matched) > 1
	dest := strings.Trim(o.Dest, "/")
	for _, p := range matched {
		e := m[p]
		if p == "" || e.Mode.IsDir() {
			var list []layer.Entry
			for _, n := range names {
				if p != "" && !strings.HasPrefix(n, p+"/") {
					continue
				}
				c := retarget(m[n], path.Join(dest, strings.TrimPrefix(strings.TrimPrefix(n, p), "/")), o)
				list = append(list, c)
			}
			if p != "" {
				list = append(list, retarget(e, dest, o))
			}
			out = append(out, list)
			continue
		}
		target := dest
		if destDir {
			target = path.Join(dest, path.Base(p))
		}
		out = append(out, []layer.Entry{retarget(e, target, o)})
	}
	return layer.WithParents(layer.Merge(out...), dest, destDir, o), nil
}

func retarget(e layer.Entry, name string, o layer.CopyOptions) layer.Entry {
	e.Name = name
	if o.Owner != nil {
		e.UID, e.GID = o.Owner.UID, o.Owner.GID
	}
	if o.Chmod != nil && e.Mode&fs.ModeSymlink == 0 {
		e.Mode = e.Mode&fs.ModeDir | o.Chmod(e.Mode&^fs.ModeDir, e.Mode.IsDir())
	}
	return e
}

// owner resolves --chown (or a USER) to uid:gid. Names are looked up in
// the stage's /etc/passwd and /etc/group, read only when a name is used.
func (s *stageFS) owner(ctx context.Context, spec string) (*layer.Owner, error) {
	if spec == "" {
		return nil, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	o := &layer.Owner{}
	uid, err := strconv.Atoi(user)
	primary := -1
	if err != nil {
		data, ok, rerr := s.read(ctx, "/etc/passwd")
		if rerr != nil {
			return nil, rerr
		}
		if !ok {
			return nil, fmt.Errorf("--chown=%s: the stage has no /etc/passwd to look up user %q; use a numeric uid", spec, user)
		}
		u, g, found := lookup(data, user, 2, 3)
		if !found {
			return nil, fmt.Errorf("--chown=%s: no user %q in the stage's /etc/passwd", spec, user)
		}
		uid, primary = u, g
	}
	o.UID = uid
	switch {
	case !hasGroup && primary >= 0:
		o.GID = primary
	case !hasGroup:
		o.GID = uid
	default:
		gid, err := strconv.Atoi(group)
		if err != nil {
			data, ok, rerr := s.read(ctx, "/etc/group")
			if rerr != nil {
				return nil, rerr
			}
			if !ok {
				return nil, fmt.Errorf("--chown=%s: the stage has no /etc/group to look up group %q; use a numeric gid", spec, group)
			}
			g, _, found := lookup(data, group, 2, -1)
			if !found {
				return nil, fmt.Errorf("--chown=%s: no group %q in the stage's /etc/group", spec, group)
			}
			gid = g
		}
		o.GID = gid
	}
	return o, nil
}

// lookup finds name in a passwd/group file and returns fields a and b.
func lookup(data []byte, name string, a, b int) (int, int, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) <= a || f[0] != name {
			continue
		}
		x, err := strconv.Atoi(f[a])
		if err != nil {
			return 0, 0, false
		}
		y := -1
		if b >= 0 && len(f) > b {
			if v, err := strconv.Atoi(f[b]); err == nil {
				y = v
			}
		}
		return x, y, true
	}
	return 0, 0, false
}
