package snapshot

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// change is one path of the layer.
type change struct {
	name   string
	m      meta
	opaque bool // a replaced directory: lower contents are hidden
}

// Diff compares root with the index and writes the layer tar of what
// changed. Only changed regular files are read.
func (t *Tree) Diff(ctx context.Context, w io.Writer, o Options) (Stats, error) {
	var st Stats
	after := map[string]meta{}
	var order []string
	err := t.walk(ctx, func(rel string, m meta) {
		after[rel] = m
		order = append(order, rel)
	})
	if err != nil {
		return st, fmt.Errorf("scanning %s: %w", t.root, err)
	}
	st.Scanned = len(order)

	emit := map[string]*change{}
	opaque := map[string]bool{}
	// Paths whose lower contents are gone: replaced directories and
	// directories that became something else. Nothing under them needs a
	// whiteout, and everything under them is new.
	hidden := func(p string) bool {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if opaque[d] {
				return true
			}
			if b, ok := t.paths[d]; ok && isDir(b.mode) {
				if a, ok := after[d]; !ok || !isDir(a.mode) {
					return true
				}
			}
		}
		return false
	}
	// A directory is written opaque when it was replaced: its inode
	// changed, or (inode numbers are reused) something under it was
	// deleted, something is in it now, and nothing under it is as it was,
	// so the opaque form costs no entry the whiteouts would not.
	kept := map[string]bool{}      // directories with an unchanged path below
	lostChild := map[string]bool{} // directories with a child deleted
	hasChild := map[string]bool{}
	for _, p := range order {
		hasChild[path.Dir(p)] = true
		if b, ok := t.paths[p]; ok && b == after[p] {
			for d := path.Dir(p); d != "." && !kept[d]; d = path.Dir(d) {
				kept[d] = true
			}
		}
	}
	for p := range t.paths {
		if _, ok := after[p]; !ok {
			lostChild[path.Dir(p)] = true
		}
	}
	for _, p := range order { // parents come before children
		a := after[p]
		b, ok := t.paths[p]
		replaced := isDir(a.mode) && isDir(b.mode) &&
			(a.ino != b.ino || a.dev != b.dev || lostChild[p] && hasChild[p] && !kept[p])
		switch {
		case !ok:
			emit[p] = &change{name: p, m: a}
		case replaced && !hidden(p):
			emit[p] = &change{name: p, m: a, opaque: true}
			opaque[p] = true
			st.Opaque++
		case hidden(p):
			emit[p] = &change{name: p, m: a}
		case isDir(a.mode) && isDir(b.mode) && a.ino == b.ino && a.dev == b.dev && sameDirMeta(a, b):
			// Only its change time (or link count) moved: something was
			// made and removed in it. It is written only as the parent
			// of a change.
		case a != b:
			emit[p] = &change{name: p, m: a}
		}
	}
	var whiteouts []string
	for p := range t.paths {
		if _, ok := after[p]; ok {
			continue
		}
		st.Deleted++
		if hidden(p) {
			continue // under a directory deleted, replaced or turned into a file
		}
		whiteouts = append(whiteouts, p)
	}
	// Parent directories of every change go into the layer too, so it
	// applies on its own and dates the directories it changed.
	addParents := func(p string) {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := emit[d]; ok {
				return
			}
			emit[d] = &change{name: d, m: after[d]}
		}
	}
	for p := range emit {
		addParents(p)
	}
	for _, p := range whiteouts {
		addParents(p)
	}
	st.Changed = len(emit)

	items := make([]layerItem, 0, len(emit)+len(whiteouts)+len(opaque))
	for p, c := range emit {
		items = append(items, layerItem{name: p, path: t.root + "/" + p, m: c.m})
		if c.opaque {
			items = append(items, layerItem{name: path.Join(p, opaqueMarker), marker: true})
		}
	}
	for _, p := range whiteouts {
		items = append(items, layerItem{name: path.Join(path.Dir(p), whiteoutPrefix+path.Base(p)), marker: true})
	}
	sort.Slice(items, func(i, j int) bool { return pathLess(items[i].name, items[j].name) })
	n, err := writeLayer(ctx, w, items, o, nil)
	st.BytesRead += n
	return st, err
}

// layerItem is one entry of a layer: a path on the host (named name in
// the layer, with the metadata m), or a whiteout or opaque marker.
type layerItem struct {
	name   string
	path   string
	m      meta
	marker bool
	// bare (overlay): a directory copied up whose own metadata equals the
	// root's; it goes into the layer only as the parent of a change.
	bare bool
}

// writeLayer writes the items, sorted, as a layer tar (extended
// attributes that skip names left out) and returns the bytes of file
// content read.
func writeLayer(ctx context.Context, w io.Writer, items []layerItem, o Options, skip func(string) bool) (int64, error) {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{} // inode → first name written
	whTime := time.Unix(0, 0).UTC()
	if o.Epoch != nil {
		whTime = o.Epoch.UTC()
	}
	var read int64
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return read, err
		}
		if it.marker {
			if err := writeMarker(tw, it.name, whTime); err != nil {
				return read, err
			}
			continue
		}
		n, err := writeEntry(tw, it.name, it.path, it.m, links, o, skip)
		read += n
		if err != nil {
			return read, err
		}
	}
	if err := tw.Close(); err != nil {
		return read, fmt.Errorf("writing the layer: %w", err)
	}
	return read, nil
}

// readNames lists a directory's entry names.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// writeMarker writes a whiteout or opaque marker.
func writeMarker(tw *tar.Writer, name string, t time.Time) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: t, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// pathLess orders paths so a directory comes right before its contents
// ("a", "a/b", "a.b" rather than "a", "a.b", "a/b").
func pathLess(a, b string) bool {
	return strings.ReplaceAll(a, "/", "\x00") < strings.ReplaceAll(b, "/", "\x00")
}

func isDir(mode uint32) bool { return mode&unix.S_IFMT == unix.S_IFDIR }

// writeEntry writes the path at host (named name in the layer, with the
// metadata m) into the layer: a directory, a symlink, a regular file (a
// hardlink to the first name of an inode seen before), a device or a
// fifo, with its extended attributes except those skip names. It
// returns the bytes of content read.
func writeEntry(tw *tar.Writer, name, host string, m meta, links map[[2]uint64]string, o Options, skip func(xattr string) bool) (int64, error) {
	mtime := time.Unix(0, m.mtime).UTC()
	if o.Epoch != nil && mtime.After(*o.Epoch) {
		mtime = o.Epoch.UTC()
	}
	hdr := &tar.Header{
		Name: name, Mode: int64(m.mode & 0o7777), Uid: int(m.uid), Gid: int(m.gid),
		ModTime: mtime, Format: tar.FormatPAX,
	}
	switch m.mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = m.link
	case unix.S_IFREG:
		key := [2]uint64{m.dev, m.ino}
		if first, ok := links[key]; ok && m.nlink > 1 {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = m.size
			if m.nlink > 1 {
				links[key] = name
			}
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if m.mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(m.rdev)), int64(unix.Minor(m.rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return 0, nil // sockets do not go into layers
	}
	if hdr.Typeflag != tar.TypeLink {
		x, err := xattrs(host)
		if err != nil {
			return 0, fmt.Errorf("reading the extended attributes of /%s: %w", name, err)
		}
		for k, v := range x {
			if skip != nil && skip(k) {
				continue
			}
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("writing /%s: %w", name, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return 0, nil
	}
	fd, err := unix.Open(host, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("reading /%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), host)
	defer f.Close()
	n, err := io.CopyN(tw, f, hdr.Size)
	if errors.Is(err, io.EOF) {
		return n, fmt.Errorf("/%s shrank while the layer was written (%d of %d bytes)", name, n, hdr.Size)
	}
	if err != nil {
		return n, fmt.Errorf("reading /%s: %w", name, err)
	}
	return n, nil
}

// xattrs reads a path's extended attributes (not following a symlink),
// leaving out SELinux labels, which belong to the host's policy.
func xattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			return nil, nil
		}
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" || name == "security.selinux" {
			continue
		}
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, err
		}
		v := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, err
		}
		out[name] = string(v[:n])
	}
	return out, nil
}
