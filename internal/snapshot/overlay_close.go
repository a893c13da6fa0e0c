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

	"golang.org/x/sys/unix"

	"github.com/hoist-ci/hoist/internal/extract"
)

// mergeDown makes root what the merged view was, except at the excluded
// paths: by rename when the upper directory shares root's filesystem (no
// content is copied), else by applying the upper directory as a layer.
// The overlay must be unmounted.
func (s *overlaySession) mergeDown(ctx context.Context) error {
	var ust, rst unix.Stat_t
	if err := unix.Lstat(s.upper, &ust); err != nil {
		return err
	}
	if err := unix.Lstat(s.root, &rst); err != nil {
		return err
	}
	if ust.Dev == rst.Dev {
		if err := s.moveDir(""); err != nil {
			return err
		}
	} else if err := s.applyUpper(ctx); err != nil {
		return err
	}
	return s.syncDir(s.upper, &ust, s.root)
}

// applyUpper writes the upper directory as a layer and extracts it into
// root.
func (s *overlaySession) applyUpper(ctx context.Context) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.diff(ctx, pw, Options{}, s.exclude)
		pw.CloseWithError(err)
		done <- err
	}()
	_, err := extract.Apply(ctx, s.root, pr, extract.Options{})
	pr.CloseWithError(errors.New("extraction stopped"))
	derr := <-done
	if err != nil {
		return fmt.Errorf("applying the upper directory as a layer: %w", err)
	}
	return derr
}

// moveDir moves the entries of the upper directory rel into root's
// directory rel, which exists (rel is "" or a directory of both that
// is not opaque).
func (s *overlaySession) moveDir(rel string) error {
	names, err := readNames(filepath.Join(s.upper, rel))
	if err != nil {
		return err
	}
	for _, n := range names {
		child := path.Join(rel, n)
		if s.exclude[child] {
			continue // root keeps its own entry there
		}
		up, low := filepath.Join(s.upper, child), filepath.Join(s.root, child)
		var ust, lst unix.Stat_t
		if err := unix.Lstat(up, &ust); err != nil {
			return err
		}
		if isWhiteout(&ust) {
			if err := os.RemoveAll(low); err != nil {
				return err
			}
			continue
		}
		lowerErr := unix.Lstat(low, &lst)
		if lowerErr != nil && !errors.Is(lowerErr, unix.ENOENT) {
			return &os.PathError{Op: "lstat", Path: low, Err: lowerErr}
		}
		exists := lowerErr == nil
		if isDir(ust.Mode) && exists && isDir(lst.Mode) {
			opq, err := s.opaque(up)
			if err != nil {
				return err
			}
			if !opq {
				if err := s.moveDir(child); err != nil {
					return err
				}
				if err := s.syncDir(up, &ust, low); err != nil {
					return err
				}
				continue
			}
		}
		// Replaced, or new: a directory (opaque, or over a non-directory)
		// goes down whole; rename replaces a non-directory by itself.
		if exists && (isDir(lst.Mode) || isDir(ust.Mode)) {
			if err := os.RemoveAll(low); err != nil {
				return err
			}
		}
		if err := os.Rename(up, low); err != nil {
			return err
		}
		if err := s.cleanTree(low, isDir(ust.Mode)); err != nil {
			return err
		}
	}
	return nil
}

// cleanTree strips overlay's attributes from a path moved down, and from
// everything under it when it is a directory (stray whiteouts there are
// removed: nothing lower is left for them to hide).
func (s *overlaySession) cleanTree(p string, dir bool) error {
	if err := s.stripXattrs(p); err != nil {
		return err
	}
	if !dir {
		return nil
	}
	names, err := readNames(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		c := filepath.Join(p, n)
		var st unix.Stat_t
		if err := unix.Lstat(c, &st); err != nil {
			return err
		}
		if isWhiteout(&st) {
			if err := os.Remove(c); err != nil {
				return err
			}
			continue
		}
		if err := s.cleanTree(c, isDir(st.Mode)); err != nil {
			return err
		}
	}
	return nil
}

func (s *overlaySession) stripXattrs(p string) error {
	names, err := listXattrs(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if s.overlayXattr(n) {
			if err := unix.Lremovexattr(p, n); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("removing %s from %s: %w", n, p, err)
			}
		}
	}
	return nil
}

// syncDir gives the directory low the owner, mode, extended attributes
// and times of the upper directory up, whose status st was taken before
// entries were moved out of it; times last, since moving entries in
// changed low's.
func (s *overlaySession) syncDir(up string, st *unix.Stat_t, low string) error {
	if err := os.Lchown(low, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(low, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: low, Err: err}
	}
	want, err := xattrs(up)
	if err != nil {
		return err
	}
	have, err := listXattrs(low)
	if err != nil {
		return err
	}
	for _, n := range have {
		if _, ok := want[n]; !ok && n != "security.selinux" {
			if err := unix.Lremovexattr(low, n); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("removing %s from %s: %w", n, low, err)
			}
		}
	}
	for n, v := range want {
		if s.overlayXattr(n) {
			continue
		}
		if err := unix.Lsetxattr(low, n, []byte(v), 0); err != nil {
			return fmt.Errorf("setting %s on %s: %w", n, low, err)
		}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, low, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: low, Err: err}
	}
	return nil
}

// listXattrs lists the names of p's extended attributes (not following
// a symlink); none where the filesystem has none.
func listXattrs(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
	}
	var names []string
	for _, n := range strings.Split(string(buf[:size]), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}
