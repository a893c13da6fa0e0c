// Package snapshot turns what a command changed in a root directory into
// a layer tar: new and modified files, whiteouts for deletions, opaque
// directories for replaced ones, hardlinks, symlinks, device nodes,
// extended attributes (file capabilities among them), ownership and modes.
//
// The cost follows the change, not the tree. The index method records
// each path's metadata before the command (lstat only: no content is
// read) and compares after; only changed files are read, to be written
// into the layer. An overlayfs method, where the upper directory is the
// diff, slots in behind the same Method interface when mounts are
// permitted (see Detect).
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Method captures the changes a command makes to a root directory.
type Method interface {
	// Name is "index" or "overlay".
	Name() string
	// Begin prepares root for a command. The command must run in the
	// session's Dir.
	Begin(ctx context.Context, root string, exclude []string) (Session, error)
}

// Session is one command's capture.
type Session interface {
	// Dir is where the command runs (the root for the index method, a
	// merged mount for overlayfs).
	Dir() string
	// Diff writes the layer tar of what changed since Begin.
	Diff(ctx context.Context, w io.Writer, o Options) (Stats, error)
	Close() error
}

// Options of a diff.
type Options struct {
	// Epoch, when set, clamps every modification time to it (reproducible
	// builds, SOURCE_DATE_EPOCH) and dates whiteouts.
	Epoch *time.Time
}

// Stats count a diff's work: paths compared, entries written, bytes of
// file content read.
type Stats struct {
	Scanned   int
	Changed   int
	Deleted   int
	Opaque    int
	BytesRead int64
}

// meta is what the index keeps of a path: enough to see any change to
// the inode or to what the name points at. Extended attributes are not
// read: setting one changes the inode's ctime.
type meta struct {
	dev, ino     uint64
	mode         uint32
	uid, gid     uint32
	nlink        uint64
	size         int64
	rdev         uint64
	mtime, ctime int64 // nanoseconds
	link         string
}

func metaOf(st *unix.Stat_t) meta {
	return meta{
		dev: st.Dev, ino: st.Ino, mode: st.Mode, uid: st.Uid, gid: st.Gid, nlink: st.Nlink,
		size: st.Size, rdev: st.Rdev, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}
}

// Tree is a metadata index of a root directory.
type Tree struct {
	root    string
	exclude map[string]bool
	paths   map[string]meta
}

// Len is the number of indexed paths.
func (t *Tree) Len() int { return len(t.paths) }

// coarseClock bounds how far file timestamps (taken from the kernel's
// coarse clock, one tick at HZ=100) may lag the wall clock.
const coarseClock = 20 * time.Millisecond

// Index records the metadata of every path under root, except the
// root-relative paths in exclude (mount points such as proc, sys, dev, or
// RUN mounts) and what is under them.
func Index(ctx context.Context, root string, exclude []string) (*Tree, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("indexing %s: %w", root, err)
	}
	t := &Tree{root: abs, exclude: map[string]bool{}, paths: map[string]meta{}}
	for _, e := range exclude {
		t.exclude[strings.Trim(path.Clean("/"+e), "/")] = true
	}
	var newest int64
	err = t.walk(ctx, func(rel string, m meta) {
		t.paths[rel] = m
		newest = max(newest, m.ctime, m.mtime)
	})
	if err != nil {
		return nil, fmt.Errorf("indexing %s: %w", root, err)
	}
	// A change made within the same clock tick as the newest timestamp
	// seen could leave mtime and ctime as they were ("racily clean"
	// files): wait until the clock has moved past it, so any later change
	// dates itself after everything in the index.
	deadline := time.Unix(0, newest).Add(coarseClock)
	if d := time.Until(deadline); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
	return t, nil
}

// walk calls fn for every path under the root, parents first, without
// following symlinks.
func (t *Tree) walk(ctx context.Context, fn func(rel string, m meta)) error {
	var visit func(rel string) error
	visit = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(t.root, rel)
		names, err := readNames(dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			child := path.Join(rel, n)
			if t.exclude[child] {
				continue
			}
			var st unix.Stat_t
			p := filepath.Join(t.root, child)
			if err := unix.Lstat(p, &st); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			m := metaOf(&st)
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				if m.link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			fn(child, m)
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if err := visit(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit("")
}

// IndexMethod is the snapshot method that needs no privilege.
type IndexMethod struct{}

func (IndexMethod) Name() string { return "index" }

func (IndexMethod) Begin(ctx context.Context, root string, exclude []string) (Session, error) {
	t, err := Index(ctx, root, exclude)
	if err != nil {
		return nil, err
	}
	return indexSession{t}, nil
}

type indexSession struct{ t *Tree }

func (s indexSession) Dir() string  { return s.t.root }
func (s indexSession) Close() error { return nil }
func (s indexSession) Diff(ctx context.Context, w io.Writer, o Options) (Stats, error) {
	return s.t.Diff(ctx, w, o)
}
