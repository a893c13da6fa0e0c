package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// isWhiteout reports whether st is an overlay whiteout: a character
// device 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// overlayXattr reports whether name is one of overlay's own extended
// attributes (origin, impure, opaque ...), which never go into a layer.
func (s *overlaySession) overlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || s.userXattr && strings.HasPrefix(name, "user.overlay.")
}

// opaque reports whether the upper directory p hides the lower one.
func (s *overlaySession) opaque(p string) (bool, error) {
	name := "trusted.overlay.opaque"
	if s.userXattr {
		name = "user.overlay.opaque"
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, name, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s of %s: %w", name, p, err)
	}
	return n == 1 && buf[0] == 'y', nil
}

// diff walks the upper directory only and writes it as a layer: the
// entries as the index method names and orders them, whiteouts for
// overlay's whiteouts, opaque markers for directories that replaced a
// directory of the root. Directories come with their parents because
// overlay copies every parent of a change up.
func (s *overlaySession) diff(ctx context.Context, w io.Writer, o Options, exclude map[string]bool) (Stats, error) {
	var st Stats
	var items []layerItem
	// lowerVisible: the root has a directory at rel, not hidden by an
	// opaque or new directory above it; only then do whiteouts and
	// opaque markers under rel mean anything.
	var visit func(rel string, lowerVisible bool) error
	visit = func(rel string, lowerVisible bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := readNames(filepath.Join(s.upper, rel))
		if err != nil {
			return err
		}
		for _, n := range names {
			child := path.Join(rel, n)
			if exclude[child] {
				continue
			}
			p := filepath.Join(s.upper, child)
			var fst unix.Stat_t
			if err := unix.Lstat(p, &fst); err != nil {
				return &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			st.Scanned++
			if isWhiteout(&fst) {
				if lowerVisible {
					items = append(items, layerItem{name: path.Join(rel, whiteoutPrefix+n), marker: true})
					st.Deleted++
				}
				continue
			}
			m := metaOf(&fst)
			if fst.Mode&unix.S_IFMT == unix.S_IFLNK {
				if m.link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			items = append(items, layerItem{name: child, path: p, m: m})
			if !isDir(fst.Mode) {
				continue
			}
			opq, err := s.opaque(p)
			if err != nil {
				return err
			}
			lowerDir := false
			if lowerVisible {
				var lst unix.Stat_t
				lowerDir = unix.Lstat(filepath.Join(s.root, child), &lst) == nil && isDir(lst.Mode)
				if lowerDir && !opq && sameDirMeta(metaOf(&lst), m) {
					items[len(items)-1].bare = true
				}
			}
			if opq && lowerDir {
				items = append(items, layerItem{name: path.Join(child, opaqueMarker), marker: true})
				st.Opaque++
			}
			if err := visit(child, lowerDir && !opq); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit("", true); err != nil {
		return st, fmt.Errorf("scanning the overlay's upper directory %s: %w", s.upper, err)
	}
	sort.Slice(items, func(i, j int) bool { return pathLess(items[i].name, items[j].name) })
	// Drop bare directories with nothing under them (children sort after
	// their parents, so a reverse pass sees them first).
	hasChild := map[string]bool{}
	kept := items[:0:0]
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		if it.bare && !hasChild[it.name] {
			continue
		}
		hasChild[path.Dir(it.name)] = true
		kept = append(kept, it)
	}
	items = items[:0]
	for i := len(kept) - 1; i >= 0; i-- {
		items = append(items, kept[i])
	}
	for _, it := range items {
		if !it.marker {
			st.Changed++
		}
	}

	n, err := writeLayer(ctx, w, items, o, s.overlayXattr)
	st.BytesRead += n
	return st, err
}

// sameDirMeta: a directory's own metadata (type, permissions, owner,
// modification time) is unchanged. Its change time is not compared: it
// moves when anything is made and removed in it.
func sameDirMeta(a, b meta) bool {
	return a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.mtime == b.mtime
}
