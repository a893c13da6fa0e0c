package snapshot

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// upperItem is one entry of an overlay layer: an upper path, or a
// whiteout or opaque marker.
type upperItem struct {
	name   string // in the layer
	path   string // in the upper directory; empty for markers
	m      meta
	marker bool
	// bare: a directory overlay copied up whose own metadata equals the
	// root's (something was made and removed in it, or a child changed);
	// it goes into the layer only as the parent of a change.
	bare bool
}

// diff walks the upper directory only and writes it as a layer: the
// entries as the index method names and orders them, whiteouts for
// overlay's whiteouts, opaque markers for directories that replaced a
// directory of the root. Directories come with their parents because
// overlay copies every parent of a change up.
func (s *overlaySession) diff(ctx context.Context, w io.Writer, o Options, exclude map[string]bool) (Stats, error) {
	var st Stats
	var items []upperItem
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
					items = append(items, upperItem{name: path.Join(rel, whiteoutPrefix+n), marker: true})
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
			items = append(items, upperItem{name: child, path: p, m: m})
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
				items = append(items, upperItem{name: path.Join(child, opaqueMarker), marker: true})
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

	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	whTime := time.Unix(0, 0).UTC()
	if o.Epoch != nil {
		whTime = o.Epoch.UTC()
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if it.marker {
			if err := writeMarker(tw, it.name, whTime); err != nil {
				return st, err
			}
			continue
		}
		n, err := s.writeEntry(tw, it, links, o)
		st.BytesRead += n
		if err != nil {
			return st, err
		}
	}
	if err := tw.Close(); err != nil {
		return st, fmt.Errorf("writing the layer: %w", err)
	}
	return st, nil
}

// sameDirMeta: a directory's own metadata (type, permissions, owner,
// modification time) is unchanged. Its change time is not compared: it
// moves when anything is made and removed in it.
func sameDirMeta(a, b meta) bool {
	return a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.mtime == b.mtime
}

// writeEntry writes one upper path as the index method writes a path of
// the root, leaving out overlay's own extended attributes.
func (s *overlaySession) writeEntry(tw *tar.Writer, it upperItem, links map[[2]uint64]string, o Options) (int64, error) {
	return writeEntry(tw, it.name, it.path, it.m, links, o, s.overlayXattr)
}
