package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hoist-ci/hoist/internal/extract"
	"github.com/hoist-ci/hoist/internal/golden"
)

// requireOverlay skips under -short and when not root (only root may
// mount overlayfs outside a user namespace). As root on a kernel that
// cannot mount overlayfs (detected), it checks the clear error and the
// fallback to the index method instead, and reports false: the caller
// returns.
func requireOverlay(t testing.TB) bool {
	t.Helper()
	if testing.Short() {
		t.Skip("mounts overlayfs; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	ctx := context.Background()
	err := OverlayUsable(ctx, t.TempDir())
	if err == nil {
		return true
	}
	t.Logf("this kernel cannot mount overlayfs (%v): checking the error and the fallback instead", err)
	_, _, serr := Select(ctx, ChooseOverlay, t.TempDir())
	require.ErrorContains(t, serr, "snapshot overlay:")
	require.ErrorContains(t, serr, "use snapshot auto or index", "the error names the fix")
	m, note, err := Select(ctx, ChooseAuto, t.TempDir())
	require.NoError(t, err)
	require.Equal(t, IndexMethod{}.Name(), m.Name(), "auto falls back to the metadata index: %s", note)
	return false
}

// methods are the snapshot methods every golden case runs through.
func methods(scratch string) []Method {
	return []Method{IndexMethod{}, OverlayMethod{Scratch: scratch}}
}

// overlayDivergence names the golden cases whose end state under overlayfs
// differs from a command run in the root itself, and how.
var overlayDivergence = map[string]string{
	// Copy-up breaks a lower file's hard links (overlayfs with index=off,
	// as Docker's overlay2): the renamed name is a copy, unlinked from
	// state.bak.
	"nested-churn": "hard links of a lower file are broken by copy-up",
}

var (
	mtimeRe = regexp.MustCompile(`mtime=\S+`)
	nlinkRe = regexp.MustCompile(`nlink=\d+`)
)

// normalized is a tree listing where every time other than the base
// tree's reads "new" (two runs of a case differ only in when they ran).
func normalized(listing string) string {
	base := "mtime=" + baseTime.Format("2006-01-02T15:04:05.999999999Z07:00")
	return mtimeRe.ReplaceAllStringFunc(listing, func(m string) string {
		if m == base {
			return m
		}
		return "mtime=new"
	})
}

// TestDiffGoldenBothMethods runs TestDiffGolden's cases through each
// method: the command runs in the session's Dir; the layer applied with
// the project's extractor over the base gives the tree the command left
// (root, after Close); both methods leave the same tree; and the overlay
// method's layer matches its golden listing.
func TestDiffGoldenBothMethods(t *testing.T) {
	if !requireOverlay(t) {
		return
	}
	ctx := context.Background()
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) {
			ends := map[string]string{}
			for _, m := range methods(t.TempDir()) {
				t.Run(m.Name(), func(t *testing.T) {
					tmp := t.TempDir()
					root, copyRoot := filepath.Join(tmp, "root"), filepath.Join(tmp, "copy")
					makeBase(t, root)
					makeBase(t, copyRoot)
					if c.xattr && unix.Lsetxattr(filepath.Join(root, "etc/same"), "security.capability", []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0) != nil {
						t.Skip("security.* extended attributes cannot be set here (needs CAP_SETFCAP)")
					} else if c.xattr {
						require.NoError(t, unix.Lremovexattr(filepath.Join(root, "etc/same"), "security.capability"))
						fixTimes(t, root)
					}
					s, err := m.Begin(ctx, root, nil)
					require.NoError(t, err)
					defer s.Close()
					c.mutate(t, func(p string) string { return filepath.Join(s.Dir(), p) })

					if m.Name() == "overlay" {
						var repro bytes.Buffer
						_, err = s.Diff(ctx, &repro, Options{Epoch: &epoch})
						require.NoError(t, err)
						got := tarListing(t, repro.Bytes())
						golden.String(t, filepath.Join("testdata", c.name, "expected-overlay"), got)
					}

					var layer bytes.Buffer
					_, err = s.Diff(ctx, &layer, Options{})
					require.NoError(t, err)
					_, err = extract.Apply(ctx, copyRoot, &layer, extract.Options{})
					require.NoError(t, err)
					require.NoError(t, s.Close())
					end := treeListing(t, root)
					require.Equal(t, end, treeListing(t, copyRoot), "the layer over the base is the tree the command left")
					ends[m.Name()] = normalized(end)
				})
			}
			if len(ends) < 2 {
				return
			}
			index, overlay := ends["index"], ends["overlay"]
			if why, ok := overlayDivergence[c.name]; ok {
				require.NotEqual(t, index, overlay, "case %s was listed as diverging (%s): drop it from overlayDivergence", c.name, why)
				index, overlay = nlinkRe.ReplaceAllString(index, ""), nlinkRe.ReplaceAllString(overlay, "")
			}
			require.Equal(t, index, overlay, "both methods leave the same tree")
		})
	}
}

// makeWide writes n files of size bytes over dirs directories.
func makeWide(t testing.TB, root string, n, dirs, size int) {
	for i := range n {
		d := filepath.Join(root, fmt.Sprintf("d%03d", i%dirs))
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i)), bytes.Repeat([]byte("x"), size), 0o644))
	}
}

// TestOverlayCostFollowsChange: in a root of 7,000 files, a command that
// changes one file costs the overlay diff two upper entries (the file and
// its directory) and the changed bytes; Close puts the change in root.
func TestOverlayCostFollowsChange(t *testing.T) {
	if !requireOverlay(t) {
		return
	}
	ctx := context.Background()
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	makeWide(t, root, 7000, 300, 1)
	s, err := OverlayMethod{}.Begin(ctx, root, nil)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "d007/f0007"), []byte("changed"), 0o644))
	var buf bytes.Buffer
	st, err := s.Diff(ctx, &buf, Options{})
	require.NoError(t, err)
	require.Equal(t, Stats{Scanned: 2, Changed: 2, BytesRead: int64(len("changed"))}, st)
	require.Equal(t, "d007/ 5\nd007/f0007 0\n", entryTypes(t, buf.Bytes()))
	require.NoError(t, s.Close())
	data, err := os.ReadFile(filepath.Join(root, "d007/f0007"))
	require.NoError(t, err)
	require.Equal(t, "changed", string(data))
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the scratch directory is removed")
}

func mounted(t testing.TB, dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// TestOverlayCloseWithoutDiff: a command that failed is not diffed; Close
// still unmounts and leaves root as the command left it (as the index
// method would), and the merged root looks like the root.
func TestOverlayCloseWithoutDiff(t *testing.T) {
	if !requireOverlay(t) {
		return
	}
	ctx := context.Background()
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	makeBase(t, root)
	require.NoError(t, os.Chmod(root, 0o751))
	require.NoError(t, os.Lchown(root, 7, 8))
	s, err := OverlayMethod{Scratch: tmp}.Begin(ctx, root, nil)
	require.NoError(t, err)
	var rst, mst unix.Stat_t
	require.NoError(t, unix.Stat(root, &rst))
	require.NoError(t, unix.Stat(s.Dir(), &mst))
	require.Equal(t, []uint32{rst.Mode, rst.Uid, rst.Gid}, []uint32{mst.Mode, mst.Uid, mst.Gid}, "/ looks the same in the merged mount")
	require.True(t, mounted(t, s.Dir()))

	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "etc/half"), []byte("half-done"), 0o644))
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), "usr")))
	require.NoError(t, os.Mkdir(filepath.Join(s.Dir(), "usr"), 0o700))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice is harmless")
	require.False(t, mounted(t, s.Dir()))
	require.NoDirExists(t, filepath.Dir(s.Dir()))

	data, err := os.ReadFile(filepath.Join(root, "etc/half"))
	require.NoError(t, err)
	require.Equal(t, "half-done", string(data))
	entries, err := os.ReadDir(filepath.Join(root, "usr"))
	require.NoError(t, err)
	require.Empty(t, entries, "the replaced directory hides what the root had")
	fi, err := os.Stat(filepath.Join(root, "usr"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	x, err := xattrs(filepath.Join(root, "usr"))
	require.NoError(t, err)
	require.Empty(t, x, "overlay's own attributes do not reach the root")
	var after unix.Stat_t
	require.NoError(t, unix.Stat(root, &after))
	require.Equal(t, []uint32{rst.Mode, rst.Uid, rst.Gid}, []uint32{after.Mode, after.Uid, after.Gid})
}

// TestOverlayScratchElsewhere: with the upper directory on another
// filesystem (a tmpfs), Close copies the change in as a layer.
func TestOverlayScratchElsewhere(t *testing.T) {
	if !requireOverlay(t) {
		return
	}
	ctx := context.Background()
	tmp := t.TempDir()
	root, copyRoot, scratch := filepath.Join(tmp, "root"), filepath.Join(tmp, "copy"), filepath.Join(tmp, "tmpfs")
	makeBase(t, root)
	makeBase(t, copyRoot)
	require.NoError(t, os.Mkdir(scratch, 0o700))
	require.NoError(t, unix.Mount("tmpfs", scratch, "tmpfs", 0, "size=64m"))
	t.Cleanup(func() { _ = unix.Unmount(scratch, unix.MNT_DETACH) })

	s, err := OverlayMethod{Scratch: scratch}.Begin(ctx, root, nil)
	require.NoError(t, err)
	defer s.Close()
	r := func(p string) string { return filepath.Join(s.Dir(), p) }
	// One command doing what these cases do, in this order.
	run := map[string]bool{"add": true, "modify": true, "chmod-only": true, "chown": true, "touch": true, "hardlink": true,
		"xattr": true, "capability": true, "fifo": true, "replace-dir": true}
	for _, c := range diffCases() {
		if run[c.name] {
			c.mutate(t, r)
		}
	}
	var layer bytes.Buffer
	_, err = s.Diff(ctx, &layer, Options{})
	require.NoError(t, err)
	_, err = extract.Apply(ctx, copyRoot, &layer, extract.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.Equal(t, treeListing(t, copyRoot), treeListing(t, root))
}

// TestOverlayExclude: excluded paths (mount points, RUN mounts) are not
// in the layer, and root keeps its own entries there: a RUN mount may
// replace a directory of the root for the command (overlayfs refuses to
// rename it aside) without the root losing it.
func TestOverlayExclude(t *testing.T) {
	if !requireOverlay(t) {
		return
	}
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "root")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc/1"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/cache/apt/archives"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "var/cache/apt/pkgcache.bin"), []byte("pkg"), 0o644))
	s, err := OverlayMethod{}.Begin(ctx, root, []string{"/proc", "var/cache/apt/"})
	require.NoError(t, err)
	defer s.Close()
	_, ok := s.(KeepsExcluded)
	require.True(t, ok)
	apt := filepath.Join(s.Dir(), "var/cache/apt")
	require.ErrorIs(t, os.Rename(apt, apt+".aside"), unix.EXDEV, "overlayfs (redirect_dir=off) refuses to rename a directory of the root")
	require.NoError(t, os.RemoveAll(apt))
	require.NoError(t, os.Mkdir(apt, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(apt, "from-the-cache-mount"), nil, 0o644))
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), "proc/1")))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "kept"), nil, 0o644))
	var buf bytes.Buffer
	st, err := s.Diff(ctx, &buf, Options{})
	require.NoError(t, err)
	require.Equal(t, 3, st.Changed)
	require.Equal(t, "kept 0\nvar/ 5\nvar/cache/ 5\n", entryTypes(t, buf.Bytes()))
	require.NoError(t, s.Close())
	require.FileExists(t, filepath.Join(root, "kept"))
	require.DirExists(t, filepath.Join(root, "proc/1"))
	require.DirExists(t, filepath.Join(root, "var/cache/apt/archives"))
	require.FileExists(t, filepath.Join(root, "var/cache/apt/pkgcache.bin"))
	require.NoFileExists(t, filepath.Join(root, "var/cache/apt/from-the-cache-mount"))
}

func TestOverlayBeginRefusesScratchInsideRoot(t *testing.T) {
	root := t.TempDir()
	_, err := OverlayMethod{Scratch: filepath.Join(root, "tmp")}.Begin(context.Background(), root, nil)
	require.ErrorContains(t, err, "is inside it (overlayfs layers may not overlap)")
}

func TestParseChoice(t *testing.T) {
	for in, want := range map[string]Choice{"": ChooseAuto, "auto": ChooseAuto, " Overlay ": ChooseOverlay, "index": ChooseIndex} {
		got, err := ParseChoice(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseChoice("btrfs")
	require.ErrorContains(t, err, `snapshot "btrfs": use auto, overlay or index`)
}

func TestSelect(t *testing.T) {
	ctx := context.Background()
	m, note, err := Select(ctx, ChooseIndex, t.TempDir())
	require.NoError(t, err)
	require.Equal(t, "index", m.Name())
	require.Equal(t, "metadata index (chosen)", note)

	// A scratch directory that does not exist: overlay cannot be used.
	missing := filepath.Join(t.TempDir(), "missing")
	_, _, err = Select(ctx, ChooseOverlay, missing)
	require.ErrorIs(t, err, ErrOverlayUnavailable)
	require.ErrorContains(t, err, "use snapshot auto or index")
	m, note, err = Select(ctx, ChooseAuto, missing)
	require.NoError(t, err)
	require.Equal(t, "index", m.Name())
	require.Contains(t, note, "metadata index (overlayfs cannot be mounted here")

	if !requireOverlay(t) {
		return
	}
	m, note, err = Select(ctx, ChooseOverlay, t.TempDir())
	require.NoError(t, err)
	require.Equal(t, "overlay", m.Name())
	require.Equal(t, "overlayfs (chosen)", note)
}

// BenchmarkOverlayDiff: BenchmarkIndexDiff's tree (7,000 files), one file
// changed; each round mounts, changes, diffs and merges down.
func BenchmarkOverlayDiff(b *testing.B) {
	requireOverlay(b)
	ctx := context.Background()
	tmp := b.TempDir()
	root := filepath.Join(tmp, "root")
	makeWide(b, root, 7000, 300, 4096)
	for b.Loop() {
		s, err := OverlayMethod{Scratch: tmp}.Begin(ctx, root, nil)
		require.NoError(b, err)
		require.NoError(b, os.WriteFile(filepath.Join(s.Dir(), "d007/f0007"), []byte("changed"), 0o644))
		st, err := s.Diff(ctx, io.Discard, Options{})
		require.NoError(b, err)
		require.Equal(b, int64(7), st.BytesRead)
		require.NoError(b, s.Close())
	}
}

// TestOverlayCloseWhileBusy: a process the command left behind keeps the
// mount busy; Close detaches it and still merges the change down.
func TestOverlayCloseWhileBusy(t *testing.T) {
	if !requireOverlay(t) {
		return
	}
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "root")
	makeBase(t, root)
	s, err := OverlayMethod{}.Begin(ctx, root, nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "etc/daemon.pid"), []byte("42"), 0o644))
	busy, err := os.Open(filepath.Join(s.Dir(), "etc"))
	require.NoError(t, err)
	defer busy.Close()
	require.ErrorIs(t, unix.Unmount(s.Dir(), 0), unix.EBUSY)
	require.NoError(t, s.Close())
	require.False(t, mounted(t, s.Dir()))
	data, err := os.ReadFile(filepath.Join(root, "etc/daemon.pid"))
	require.NoError(t, err)
	require.Equal(t, "42", string(data))
}
