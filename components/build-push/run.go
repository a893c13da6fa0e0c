package buildpush

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/layer"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/snapshot"
)

// run executes a RUN: from the layer cache when its key hits (the base is
// then never unpacked), else in the sandbox inside the stage's unpacked
// root, the layer being the snapshot of what the command changed.
func (b *builder) run(ctx context.Context, st *dockerfile.State, out *stageOut, r *dockerfile.Run) error {
	where := fmt.Sprintf("%s:%d", b.plan.File.Name, r.Line)
	network := b.o.Network
	if r.Network == string(sandbox.NetworkNone) {
		network = sandbox.NetworkNone
	}
	mounts, binds, err := b.mountIdentities(ctx, r)
	if err != nil {
		return fmt.Errorf("%s: RUN --mount: %w", where, err)
	}
	key := runKey(out.key, r, network, mounts)
	out.key = key
	if b.cache != nil && !b.o.NoRunCache {
		if l, ok := b.cache.lookup(ctx, key); ok {
			b.hits++
			if err := b.keepRoot(ctx, out, l); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			return b.addLayer(st, out, l, r.Instruction)
		}
	}
	if err := b.materialize(ctx, out); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := b.checkEmulation(out.fs.root, r.Platform); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := findProgram(out.fs.root, r); err != nil {
		return fmt.Errorf("%s: RUN: %w", where, err)
	}
	user, err := resolveUser(ctx, out.fs, r.User)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	method, err := b.snapshotMethod(ctx, filepath.Dir(out.fs.root))
	if err != nil {
		return err
	}
	exclude := []string{strings.Trim(dockerfile.ScriptDir, "/")}
	for _, m := range r.Mounts {
		if m.Target != "" {
			exclude = append(exclude, strings.Trim(m.Target, "/"))
		}
	}
	sess, err := method.Begin(ctx, out.fs.root, exclude)
	if err != nil {
		return fmt.Errorf("%s: preparing the snapshot: %w", where, err)
	}
	defer sess.Close()
	env := slices.Clone(r.Env)
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+user.Home)
	}
	if err := makeMountPoints(sess.Dir()); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := makeWorkdir(sess.Dir(), r.Dir, user); err != nil {
		return fmt.Errorf("%s: WORKDIR %s: %w", where, r.Dir, err)
	}
	_, keeps := sess.(snapshot.KeepsExcluded)
	pl := &placement{root: sess.Dir(), keepsExcluded: keeps}
	extraEnv, err := b.placeMounts(ctx, pl, r, binds)
	if err != nil {
		pl.undo()
		return fmt.Errorf("%s: RUN --mount: %w", where, err)
	}
	env = append(env, extraEnv...)
	b.o.Log.Info("RUN", "line", r.Line, "command", b.masked(strings.Join(r.Args, " ")))
	start := time.Now()
	output := newMaskWriter(b.output(), b.secretValues(), fmt.Sprintf("#%d | ", r.Line))
	iso, err := sandbox.Run(ctx, sandbox.Command{
		Root:    sess.Dir(),
		Args:    r.Args,
		Env:     env,
		Dir:     r.Dir,
		UID:     user.UID,
		GID:     user.GID,
		Groups:  user.Groups,
		Network: network,
		Stdout:  output,
		Stderr:  output,
		Init:    b.o.SandboxInit,
		Pipes:   pipes(r.Scripts),
	}, b.isolation())
	output.Flush()
	if uerr := pl.undo(); uerr != nil && err == nil {
		err = fmt.Errorf("removing the RUN mounts: %w", uerr)
	}
	if err != nil {
		var ee *sandbox.ExitError
		if errors.As(err, &ee) {
			tail := b.masked(ee.Tail)
			msg := fmt.Sprintf("%s: RUN %s: exit code %d", where, b.masked(strings.Join(r.Args, " ")), ee.Code)
			if tail != "" {
				msg += "; last output:\n" + tail
			}
			if strings.HasPrefix(out.fs.root, memoryDir+"/") && strings.Contains(tail, "No space left on device") {
				msg += "\n(the stage is unpacked in memory, " + memoryDir + ": set scratch-dir to a directory on a disk with room)"
			}
			return errors.New(msg)
		}
		return fmt.Errorf("%s: RUN: %s", where, b.masked(err.Error()))
	}
	b.rememberIsolation(iso)
	var stats snapshot.Stats
	l, err := layer.BuildFrom(func(w io.Writer) error {
		var derr error
		stats, derr = sess.Diff(ctx, w, snapshot.Options{Epoch: b.o.Epoch})
		return derr
	}, b.o.Compression, b.o.Format, b.o.TempDir)
	if err != nil {
		return fmt.Errorf("%s: snapshotting the RUN: %w", where, err)
	}
	if err := sess.Close(); err != nil {
		l.Close()
		return fmt.Errorf("%s: finishing the snapshot: %w", where, err)
	}
	b.temps = append(b.temps, l)
	b.o.Log.Info("RUN done", "line", r.Line, "isolation", string(iso), "snapshot", method.Name(), "elapsed", time.Since(start).Round(time.Millisecond).String(),
		"scanned", stats.Scanned, "changed", stats.Changed, "deleted", stats.Deleted, "bytes-read", stats.BytesRead)
	b.built++
	if b.cache != nil && !b.o.NoRunCache {
		b.cache.store(key, l)
	}
	return b.addLayer(st, out, l, r.Instruction)
}

// addLayer records a layer of the stage and its history. A step that
// changed nothing still has its (empty) layer, as BuildKit exports it.
func (b *builder) addLayer(st *dockerfile.State, out *stageOut, l v1.Layer, text string) error {
	diffID, err := l.DiffID()
	if err != nil {
		return fmt.Errorf("reading the layer of %q: %w", text, err)
	}
	out.layers = append(out.layers, l)
	st.Config.RootFS.DiffIDs = append(st.Config.RootFS.DiffIDs, diffID)
	st.AddLayerHistory(text)
	return nil
}

// findProgram checks that an absolute program (the shell of a shell-form
// RUN) exists in the stage, for an error that says what is missing.
func findProgram(root string, r *dockerfile.Run) error {
	prog := r.Args[0]
	if !path.IsAbs(prog) || strings.HasPrefix(prog, dockerfile.ScriptDir+"/") {
		return nil
	}
	host, err := securejoin.SecureJoin(root, prog)
	if err != nil {
		return err
	}
	if _, err := os.Stat(host); err != nil {
		return fmt.Errorf("%s is not in the stage's filesystem: a shell-form RUN needs a shell in the image (FROM scratch has none); use an image with %s, or the exec form RUN [\"/path/to/program\", …] with a program the stage has", prog, prog)
	}
	return nil
}

// pipes are the heredoc scripts a RUN executes, by name, for the sandbox
// to show at /dev/pipes as BuildKit does.
func pipes(scripts []dockerfile.Script) map[string][]byte {
	if len(scripts) == 0 {
		return nil
	}
	m := map[string][]byte{}
	for _, s := range scripts {
		m[path.Base(s.Path)] = []byte(s.Data)
	}
	return m
}

// makeMountPoints creates /dev, /proc and /sys (0755, root) where the
// stage lacks them, as part of the RUN's layer: BuildKit's runtime makes
// these mount points in the container's root and they stay in its layer.
func makeMountPoints(root string) error {
	for _, d := range []string{"dev", "proc", "sys"} {
		p := filepath.Join(root, d)
		if _, err := os.Lstat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("creating the mount point /%s: %w", d, err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// makeWorkdir creates a missing working directory (and its parents),
// owned by the user, as part of the RUN's layer.
func makeWorkdir(root, dir string, user runUser) error {
	rel := strings.Trim(path.Clean("/"+dir), "/")
	if rel == "" {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		next, err := securejoin.SecureJoin(root, strings.TrimPrefix(filepath.Join(strings.TrimPrefix(cur, root), part), "/"))
		if err != nil {
			return err
		}
		if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(next, 0o755); err != nil {
				return err
			}
			_ = os.Lchown(next, int(user.UID), int(user.GID))
		} else if err != nil {
			return err
		}
		cur = next
	}
	return nil
}

func hasEnv(env []string, k string) bool {
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			return true
		}
	}
	return false
}

// runKey is a RUN's cache key: the parent's key, the command as the
// history records it (with the build args set), every visible ARG and
// ENV, the user, working directory and network, and the identity of each
// mount (a bind's content digest, a cache's id, a secret's id — never its
// value).
func runKey(parent string, r *dockerfile.Run, network sandbox.Network, mounts []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "hoist-run-v1\x00%s\x00%s\x00", parent, r.Instruction)
	for _, a := range r.Args {
		fmt.Fprintf(h, "arg=%s\x00", a)
	}
	for _, s := range r.Scripts {
		fmt.Fprintf(h, "script=%s=%s\x00", s.Path, s.Data)
	}
	for _, v := range r.Vars {
		fmt.Fprintf(h, "var=%s\x00", v)
	}
	fmt.Fprintf(h, "user=%s\x00dir=%s\x00network=%s\x00platform=%s\x00", r.User, r.Dir, network, r.Platform)
	for _, m := range mounts {
		fmt.Fprintf(h, "mount=%s\x00", m)
	}
	return hex.EncodeToString(h.Sum(nil))
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
			d, err := layer.DiffIDOf(layer.WithoutTimes(entries))
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
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the cache another build holds: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
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

// isolation is the one asked for, or the one the first RUN found to work.
func (b *builder) isolation() sandbox.Isolation {
	b.isoMu.Lock()
	defer b.isoMu.Unlock()
	if b.isoUsed != "" {
		return b.isoUsed
	}
	if b.o.Isolation == "" {
		return sandbox.Auto
	}
	return b.o.Isolation
}

func (b *builder) rememberIsolation(iso sandbox.Isolation) {
	b.isoMu.Lock()
	defer b.isoMu.Unlock()
	if b.isoUsed == "" && iso != "" {
		b.isoUsed = iso
		b.o.Log.Info("RUN isolation", "isolation", string(iso))
	}
}

// snapshotMethod is chosen once per build.
func (b *builder) snapshotMethod(ctx context.Context, scratch string) (snapshot.Method, error) {
	b.snapOnce.Do(func() {
		var note string
		b.snap, note, b.snapErr = snapshot.Select(ctx, b.o.Snapshot, scratch)
		if b.snapErr == nil {
			if _, ok := b.snap.(snapshot.OverlayMethod); ok {
				// Each session next to its root, on its file system.
				b.snap = snapshot.OverlayMethod{}
			}
			b.o.Log.Info("RUN snapshots", "method", b.snap.Name(), "note", note)
		}
	})
	if b.snapErr != nil {
		return nil, fmt.Errorf("snapshot-method %s: %w", b.o.Snapshot, b.snapErr)
	}
	return b.snap, nil
}

func (b *builder) output() io.Writer {
	if b.o.Output == nil {
		return io.Discard
	}
	return b.o.Output
}

// secretValues are the values to mask in RUN output and errors.
func (b *builder) secretValues() [][]byte {
	var out [][]byte
	for _, v := range b.o.Secrets {
		if len(bytes.TrimSpace(v)) >= 3 {
			out = append(out, v)
			if t := bytes.TrimSpace(v); len(t) != len(v) {
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func (b *builder) masked(s string) string {
	for _, v := range b.secretValues() {
		s = strings.ReplaceAll(s, string(v), "***")
	}
	return s
}

// maskWriter passes output through line by line with secret values
// replaced by *** and a prefix (the Dockerfile line) before each line:
// a command's output then never starts a line with "::", so it cannot
// issue GitHub workflow commands (::add-mask::, ::stop-commands::).
type maskWriter struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
	prefix  []byte
	buf     []byte
}

func newMaskWriter(w io.Writer, secrets [][]byte, prefix string) *maskWriter {
	return &maskWriter{w: w, secrets: secrets, prefix: []byte(prefix)}
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	for {
		i := bytes.IndexByte(m.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := m.w.Write(m.mask(m.buf[:i+1])); err != nil {
			return 0, err
		}
		m.buf = m.buf[i+1:]
	}
	// A very long line without newline is flushed in pieces (a secret
	// straddling the cut could pass; secrets are short).
	if len(m.buf) > 64<<10 {
		if _, err := m.w.Write(m.mask(m.buf)); err != nil {
			return 0, err
		}
		m.buf = m.buf[:0]
	}
	return len(p), nil
}

func (m *maskWriter) mask(line []byte) []byte {
	for _, s := range m.secrets {
		line = bytes.ReplaceAll(line, s, []byte("***"))
	}
	return append(append([]byte(nil), m.prefix...), line...)
}

// Flush writes a last partial line.
func (m *maskWriter) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buf) > 0 {
		_, _ = m.w.Write(m.mask(m.buf))
		m.buf = nil
	}
}
