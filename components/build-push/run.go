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
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/layer"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/snapshot"
)

// checkEmulation refuses a RUN for a platform this host cannot execute
// (no binfmt_misc emulator registered for it) and says how a foreign
// one runs.
func (b *builder) checkEmulation(root, platform string) error {
	p, err := dockerfile.ParsePlatform(platform)
	if err != nil {
		return err
	}
	how, err := sandbox.CheckEmulation(root, p)
	if err != nil {
		return err
	}
	if how != "native" {
		b.o.Log.Info("RUN through an emulator", "platform", platform, "how", how)
	}
	return nil
}

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
	output := b.runOutput(fmt.Sprintf("#%d | ", r.Line))
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
	_ = output.Close()
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

// runOutput is the writer of one RUN's output (Options.Output), or
// nothing.
func (b *builder) runOutput(prefix string) io.WriteCloser {
	if b.o.Output == nil {
		return discard{}
	}
	return b.o.Output(prefix)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

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
