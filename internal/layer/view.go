package layer

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// View is what a build step sees of a filesystem: the entry at a path
// (slash-separated, no leading slash; "" is the root), the last component
// not followed when it is a symbolic link. A path that goes through a
// symbolic link or a non-directory does not exist.
type View interface {
	Lstat(name string) (Entry, bool)
}

// Source is a tree COPY and ADD read from: the build context (its
// .dockerignore applied), a stage's unpacked root, an inline document.
type Source interface {
	View
	// ReadDir lists a directory's entry names, sorted.
	ReadDir(name string) ([]string, error)
}

// Empty is an empty filesystem: what COPY --link copies into.
type Empty struct{}

func (Empty) Lstat(string) (Entry, bool) { return Entry{}, false }
func (Empty) ReadDir(name string) ([]string, error) {
	return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
}

// DirView is a directory on the host seen as a filesystem root: an
// unpacked stage. Entries carry the files' real owners.
type DirView struct{ Root string }

// Lstat walks the path one component at a time, so that no symbolic link
// on the host is followed.
func (d DirView) Lstat(name string) (Entry, bool) {
	name = clean(name)
	if name == "" {
		fi, err := os.Lstat(d.Root)
		if err != nil {
			return Entry{}, false
		}
		return EntryOf("", d.Root, fi), true
	}
	host := d.Root
	parts := strings.Split(name, "/")
	for i, p := range parts {
		host = filepath.Join(host, p)
		fi, err := os.Lstat(host)
		if err != nil {
			return Entry{}, false
		}
		if i == len(parts)-1 {
			return EntryOf(name, host, fi), true
		}
		if !fi.IsDir() {
			return Entry{}, false
		}
	}
	return Entry{}, false
}

// ReadDir lists a directory of the root (no link followed).
func (d DirView) ReadDir(name string) ([]string, error) {
	e, ok := d.Lstat(name)
	if !ok || !e.Mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: "/" + clean(name), Err: fs.ErrNotExist}
	}
	des, err := os.ReadDir(filepath.Join(d.Root, filepath.FromSlash(clean(name))))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(des))
	for i, de := range des {
		out[i] = de.Name()
	}
	return out, nil
}

// EntryOf describes a host file as an entry named name: type, mode with
// setuid/setgid/sticky, owner, link target, device numbers, extended
// attributes, and its content read on demand.
func EntryOf(name, host string, fi fs.FileInfo) Entry {
	e := Entry{Name: name, Mode: fi.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | fs.ModeCharDevice), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
		e.Inode = [2]uint64{st.Dev, st.Ino}
		if fi.Mode()&fs.ModeDevice != 0 {
			e.Devmajor, e.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		}
	}
	switch {
	case fi.Mode().IsRegular():
		e.Size = fi.Size()
		e.Open = func() (io.ReadCloser, error) { return os.Open(host) }
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Linkname, _ = os.Readlink(host)
	}
	e.Xattrs = hostXattrs(host)
	return e
}

// hostXattrs reads the user.* and security.capability extended attributes
// of a host path (not following a link), the ones an image layer carries.
func hostXattrs(p string) map[string]string {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size <= 0 {
		return nil
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil
	}
	var out map[string]string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if !strings.HasPrefix(name, "user.") && name != "security.capability" {
			continue
		}
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		v := make([]byte, n)
		if n, err = unix.Lgetxattr(p, name, v); err != nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(v[:n])
	}
	return out
}

// EntryFromTar describes a tar header as an entry named name (no content:
// the caller sets Open for a regular file). Hard links are not resolved.
func EntryFromTar(name string, hdr *tar.Header) (Entry, bool) {
	e := Entry{Name: name, UID: hdr.Uid, GID: hdr.Gid, ModTime: hdr.ModTime}
	perm := PermFromTar(hdr.Mode)
	switch hdr.Typeflag {
	case tar.TypeDir:
		e.Mode = fs.ModeDir | perm
	case tar.TypeReg, '\x00': // '\x00' is the pre-POSIX regular file
		e.Mode = perm
		e.Size = hdr.Size
	case tar.TypeSymlink:
		e.Mode = fs.ModeSymlink | 0o777
		e.Linkname = hdr.Linkname
	case tar.TypeChar:
		e.Mode = fs.ModeDevice | fs.ModeCharDevice | perm
		e.Devmajor, e.Devminor = hdr.Devmajor, hdr.Devminor
	case tar.TypeBlock:
		e.Mode = fs.ModeDevice | perm
		e.Devmajor, e.Devminor = hdr.Devmajor, hdr.Devminor
	case tar.TypeFifo:
		e.Mode = fs.ModeNamedPipe | perm
	default:
		return e, false
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[x] = v
		}
	}
	return e, true
}

// ErrTooManyLinks is a path whose symbolic links do not end.
var ErrTooManyLinks = errors.New("too many levels of symbolic links")

// Resolve follows every symbolic link of p inside the view, as
// containerd's RootPath does for BuildKit: an absolute link target starts
// again at the view's root, ".." never climbs above it, and a component
// that does not exist is taken as it is. The result has no leading slash.
func Resolve(v View, p string) (string, error) {
	var out []string
	rest := splitPath(p)
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			continue
		}
		cand := strings.Join(append(out[:len(out):len(out)], c), "/")
		e, ok := v.Lstat(cand)
		if !ok || e.Mode&fs.ModeSymlink == 0 {
			out = append(out, c)
			continue
		}
		if links++; links > 255 {
			return "", &fs.PathError{Op: "resolve", Path: "/" + clean(p), Err: ErrTooManyLinks}
		}
		if path.IsAbs(e.Linkname) {
			out = out[:0]
		}
		rest = append(splitPath(e.Linkname), rest...)
	}
	return strings.Join(out, "/"), nil
}

func splitPath(p string) []string {
	return strings.Split(strings.Trim(filepath.ToSlash(p), "/"), "/")
}

// clean normalizes a path to the views' form: slash-separated, no leading
// or trailing slash, "" for the root.
func clean(p string) string {
	return strings.Trim(path.Clean("/"+filepath.ToSlash(p)), "/")
}
