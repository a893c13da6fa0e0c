package buildpush

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hoist-ci/hoist/internal/backoff"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"golang.org/x/sys/unix"
)

// placeCache moves a persisted cache directory (cache-dir/<id>) to the
// target for the command and back after it; across file systems it is
// copied.
func (b *builder) placeCache(ctx context.Context, p *placement, m dockerfile.Mount) error {
	dir, err := b.cacheMountDir(m.ID)
	if err != nil {
		return err
	}
	// One RUN at a time holds a cache (another build sharing cache-dir
	// waits): it is moved, not shared, so every sharing mode is "locked".
	unlock, err := lockCache(ctx, dir+".lock")
	if err != nil {
		return err
	}
	p.steps = append(p.steps, func() error { unlock(); return nil })
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		mode := os.FileMode(0o755)
		if m.Mode != nil {
			mode = os.FileMode(*m.Mode) & os.ModePerm
		}
		if err := os.MkdirAll(dir, mode); err != nil {
			return fmt.Errorf("creating the cache directory: %w", err)
		}
		uid, gid := 0, 0
		if m.UID != nil {
			uid = *m.UID
		}
		if m.GID != nil {
			gid = *m.GID
		}
		_ = os.Chown(dir, uid, gid)
		_ = os.Chmod(dir, mode)
	}
	host, err := p.prepare(m.Target)
	if err != nil {
		return err
	}
	// A bind mount where mounts are permitted (the sandbox's mount
	// namespace inherits it), else a move, else a copy.
	if err := os.Mkdir(host, 0o755); err == nil {
		if err := unix.Mount(dir, host, "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			p.steps = append(p.steps, func() error {
				if err := unix.Unmount(host, unix.MNT_DETACH); err != nil {
					return fmt.Errorf("unmounting the cache %s: %w", m.ID, err)
				}
				return nil
			})
			return nil
		}
		_ = os.Remove(host)
	}
	if err := os.Rename(dir, host); err == nil {
		p.steps = append(p.steps, func() error {
			if err := os.Rename(host, dir); err != nil {
				return fmt.Errorf("putting the cache %s back: %w", m.ID, err)
			}
			return nil
		})
		return nil
	}
	// Another file system: copy in, and copy back what the command left.
	if err := copyTree(dir, host); err != nil {
		return fmt.Errorf("copying the cache in: %w", err)
	}
	p.steps = append(p.steps, func() error {
		tmp := dir + ".new"
		_ = os.RemoveAll(tmp)
		if err := copyTree(host, tmp); err != nil {
			return fmt.Errorf("copying the cache %s back: %w", m.ID, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	})
	return nil
}

// lockCache takes the lock file of a cache directory, waiting (as long as
// ctx lets it) for another build that holds it.
func lockCache(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the cache: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking the cache: %w", err)
		}
		if err := backoff.Sleep(ctx, 100*time.Millisecond); err != nil {
			f.Close()
			return nil, fmt.Errorf("waiting for the cache another build holds: %w", err)
		}
	}
}

// cacheMountDir is where a cache mount's contents persist between builds.
func (b *builder) cacheMountDir(id string) (string, error) {
	base := b.o.CacheDir
	if base == "" {
		b.cacheDirOnce.Do(func() {
			b.tmpCacheDir, b.tmpCacheErr = os.MkdirTemp(b.o.TempDir, "hoist-cache-mounts-*")
			if b.tmpCacheErr == nil {
				b.roots = append(b.roots, b.tmpCacheDir)
				b.o.Log.Info("RUN --mount=type=cache: no cache-dir set; the cache lasts for this build only")
			}
		})
		if b.tmpCacheErr != nil {
			return "", b.tmpCacheErr
		}
		base = b.tmpCacheDir
	}
	sum := sha256.Sum256([]byte(id))
	name := sanitizeID(id) + "-" + hex.EncodeToString(sum[:4])
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("cache-dir %s: %w", base, err)
	}
	return filepath.Join(base, name), nil
}

func sanitizeID(id string) string {
	var b strings.Builder
	for _, r := range strings.Trim(id, "/") {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 48 {
			break
		}
	}
	if b.Len() == 0 {
		return "cache"
	}
	return b.String()
}

// copyTree copies a directory tree: files, directories, symbolic links,
// modes and (when permitted) owners.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := copyFile(target, func() (io.ReadCloser, error) { return os.Open(p) }); err != nil {
				return err
			}
		default:
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = os.Lchown(target, int(st.Uid), int(st.Gid))
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return os.Chmod(target, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
}
