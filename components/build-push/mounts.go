package buildpush

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/layer"
)

// writeEntries writes entries (a bind mount's contents) into a directory
// of a root, under target; entries outside target (the parents a layer
// repeats) are skipped.
func writeEntries(root, target string, entries []layer.Entry) error {
	target = strings.Trim(target, "/")
	for _, e := range entries {
		if e.Name != target && !strings.HasPrefix(e.Name, target+"/") {
			continue
		}
		host, err := securejoin.SecureJoin(root, path.Dir("/"+e.Name))
		if err != nil {
			return err
		}
		host = filepath.Join(host, path.Base(e.Name))
		perm := e.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch {
		case e.Mode.IsDir():
			if err := os.MkdirAll(host, 0o755); err != nil {
				return err
			}
		case e.Mode&fs.ModeSymlink != 0:
			_ = os.Remove(host)
			if err := os.Symlink(e.Linkname, host); err != nil {
				return err
			}
			_ = os.Lchown(host, e.UID, e.GID)
			continue
		case e.Open != nil:
			if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
				return err
			}
			if err := copyFile(host, e.Open); err != nil {
				return fmt.Errorf("writing %s: %w", e.Name, err)
			}
		default:
			continue
		}
		_ = os.Lchown(host, e.UID, e.GID)
		if err := os.Chmod(host, perm); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(dst string, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mountIdentities describe the mounts for the cache key; the contents of
// bind mounts, by mount index, are kept for placeMounts.
func (b *builder) mountIdentities(ctx context.Context, r *dockerfile.Run) ([]string, map[int][]layer.Entry, error) {
	var out []string
	binds := map[int][]layer.Entry{}
	for i, m := range r.Mounts {
		id := fmt.Sprintf("%s|%s|%s|%s|ro=%t|env=%s", m.Type, m.Target, m.ID, m.Source, m.ReadOnly, m.Env)
		if m.Mode != nil {
			id += fmt.Sprintf("|mode=%o", *m.Mode)
		}
		if m.UID != nil {
			id += fmt.Sprintf("|uid=%d", *m.UID)
		}
		if m.GID != nil {
			id += fmt.Sprintf("|gid=%d", *m.GID)
		}
		if m.Type == dockerfile.MountBind {
			entries, err := b.bindEntries(ctx, m)
			if err != nil {
				return nil, nil, err
			}
			d, err := layer.ContentKey(entries)
			if err != nil {
				return nil, nil, err
			}
			id += "|content=" + d.String()
			binds[i] = entries
		}
		if m.Type == dockerfile.MountSecret {
			_, ok := b.o.Secrets[m.ID]
			id += fmt.Sprintf("|given=%t", ok)
		}
		out = append(out, id)
	}
	return out, binds, nil
}

// bindEntries are what a bind mount shows at its target: a path of the
// build context, of a stage or of an image (a directory's contents, or a
// file), with its owners.
func (b *builder) bindEntries(ctx context.Context, m dockerfile.Mount) ([]layer.Entry, error) {
	src := m.Source
	if src == "" {
		src = "/"
	}
	var from layer.Source = b.ctxDir
	var err error
	switch {
	case m.FromStage != nil:
		if from, err = b.stageSource(ctx, m.FromStage); err != nil {
			return nil, fmt.Errorf("from=%s: %w", m.FromStage.Ref(), err)
		}
	case m.FromImage != "":
		if from, err = b.imageSource(ctx, m.FromImage); err != nil {
			return nil, fmt.Errorf("from=%s: %w", m.FromImage, err)
		}
	default:
		if err := checkSource(src); err != nil {
			return nil, fmt.Errorf("source=%s: %w", src, err)
		}
	}
	p := layer.NewPlanner(layer.Empty{})
	if err := p.Copy(layer.CopySpec{Source: from, Path: src, Dest: m.Target}); err != nil {
		if _, ok := err.(*layer.NotFoundError); ok {
			return nil, fmt.Errorf("type=bind,source=%s: not found", src)
		}
		return nil, fmt.Errorf("type=bind,source=%s: %w", src, err)
	}
	return p.Entries(), nil
}

// placement puts a RUN's mounts, secrets and scripts into the root for
// the command and takes them away after it: targets that existed are set
// aside and put back, created mount points are removed. Done by moving
// and copying files, it needs no mount privilege (isolation chroot) and
// nothing of it reaches the layer (the targets are excluded from the
// snapshot, and gone before it).
type placement struct {
	root string
	// keepsExcluded: the snapshot session restores the root's own
	// entries at mount targets (overlayfs, which refuses to rename a
	// directory of the lower root: removing it there only whites it out).
	keepsExcluded bool
	steps         []func() error // undo steps, run in reverse
	n             int
}

func (p *placement) undo() error {
	var errs []error
	for i := len(p.steps) - 1; i >= 0; i-- {
		if err := p.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	p.steps = nil
	return errors.Join(errs...)
}

// prepare makes target free to receive a mount: its parents exist (the
// created ones are removed afterwards when empty), and an existing entry
// there is set aside until the undo.
func (p *placement) prepare(target string) (string, error) {
	rel := strings.Trim(path.Clean("/"+target), "/")
	parent, err := securejoin.SecureJoin(p.root, path.Dir("/"+rel))
	if err != nil {
		return "", err
	}
	// Create missing parents one by one, remembering them.
	relParent, err := filepath.Rel(p.root, parent)
	if err != nil || strings.HasPrefix(relParent, "..") {
		return "", fmt.Errorf("%s resolves outside the root", target)
	}
	cur := p.root
	if relParent != "." {
		for _, part := range strings.Split(relParent, string(filepath.Separator)) {
			cur = filepath.Join(cur, part)
			if _, err := os.Lstat(cur); errors.Is(err, fs.ErrNotExist) {
				if err := os.Mkdir(cur, 0o755); err != nil {
					return "", err
				}
				dir := cur
				p.steps = append(p.steps, func() error { rmdirIfEmpty(dir); return nil })
			} else if err != nil {
				return "", err
			}
		}
	}
	host := filepath.Join(parent, path.Base(rel))
	if _, err := os.Lstat(host); err == nil {
		p.n++
		aside := filepath.Join(parent, fmt.Sprintf(".hoist-aside-%d-%s", p.n, path.Base(rel)))
		if err := os.Rename(host, aside); errors.Is(err, syscall.EXDEV) && p.keepsExcluded {
			if err := os.RemoveAll(host); err != nil {
				return "", fmt.Errorf("clearing %s for the mount: %w", target, err)
			}
			p.steps = append(p.steps, func() error { return os.RemoveAll(host) })
			return host, nil
		} else if err != nil {
			return "", fmt.Errorf("setting %s aside: %w", target, err)
		}
		p.steps = append(p.steps, func() error {
			_ = os.RemoveAll(host)
			return os.Rename(aside, host)
		})
	} else {
		p.steps = append(p.steps, func() error { return os.RemoveAll(host) })
	}
	return host, nil
}

func rmdirIfEmpty(dir string) { _ = os.Remove(dir) }

// placeMounts puts each mount in place and returns the environment the
// secrets with env= add.
func (b *builder) placeMounts(ctx context.Context, p *placement, r *dockerfile.Run, binds map[int][]layer.Entry) ([]string, error) {
	var env []string
	for i, m := range r.Mounts {
		switch m.Type {
		case dockerfile.MountSecret:
			value, ok := b.o.Secrets[m.ID]
			if !ok {
				if m.Required {
					return nil, fmt.Errorf("type=secret,id=%s is required and no secret %q was given: add %s=env:VARIABLE (or =file:PATH) to the secrets input", m.ID, m.ID, m.ID)
				}
				b.o.Log.Warn("RUN --mount=type=secret: no such secret given; the command runs without it", "line", r.Line, "id", m.ID)
				continue
			}
			if m.Env != "" {
				env = append(env, m.Env+"="+string(value))
			}
			if m.Target == "" {
				continue
			}
			host, err := p.prepare(m.Target)
			if err != nil {
				return nil, fmt.Errorf("type=secret,id=%s: %w", m.ID, err)
			}
			mode := os.FileMode(0o400)
			if m.Mode != nil {
				mode = os.FileMode(*m.Mode) & os.ModePerm
			}
			if err := os.WriteFile(host, value, mode); err != nil {
				return nil, fmt.Errorf("type=secret,id=%s: writing it: %w", m.ID, err)
			}
			uid, gid := 0, 0
			if m.UID != nil {
				uid = *m.UID
			}
			if m.GID != nil {
				gid = *m.GID
			}
			if err := os.Chown(host, uid, gid); err != nil && os.Geteuid() == 0 {
				return nil, fmt.Errorf("type=secret,id=%s: %w", m.ID, err)
			}
			if err := os.Chmod(host, mode); err != nil {
				return nil, err
			}
		case dockerfile.MountTmpfs:
			host, err := p.prepare(m.Target)
			if err != nil {
				return nil, fmt.Errorf("type=tmpfs,target=%s: %w", m.Target, err)
			}
			if err := os.Mkdir(host, 0o1777); err != nil {
				return nil, err
			}
			if err := os.Chmod(host, 0o1777|os.ModeSticky); err != nil {
				return nil, err
			}
		case dockerfile.MountBind:
			entries := binds[i]
			if _, err := p.prepare(m.Target); err != nil {
				return nil, fmt.Errorf("type=bind,target=%s: %w", m.Target, err)
			}
			if err := writeEntries(p.root, m.Target, entries); err != nil {
				return nil, fmt.Errorf("type=bind,target=%s: %w", m.Target, err)
			}
		case dockerfile.MountCache:
			if err := b.placeCache(ctx, p, m); err != nil {
				return nil, fmt.Errorf("type=cache,target=%s: %w", m.Target, err)
			}
		}
	}
	return env, nil
}
