package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hoist-ci/hoist/internal/extract"
	"github.com/hoist-ci/hoist/internal/golden"
)

var (
	baseTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	epoch    = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
)

// makeBase writes the tree every case starts from, with fixed times.
func makeBase(t testing.TB, root string) {
	for _, d := range []string{"etc", "bin", "usr/share/doc", "home", "var/lib"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	files := map[string]string{"etc/conf": "conf=1\n", "etc/same": "aaaa", "bin/tool": "#!tool", "usr/share/doc/readme": "r", "usr/share/x": "x", "var/lib/state": "s"}
	for p, c := range files {
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	require.NoError(t, os.Chmod(filepath.Join(root, "bin/tool"), 0o755))
	require.NoError(t, os.Symlink("tool", filepath.Join(root, "bin/sh")))
	require.NoError(t, os.Link(filepath.Join(root, "var/lib/state"), filepath.Join(root, "var/lib/state.bak")))
	fixTimes(t, root)
}

func fixTimes(t testing.TB, root string) {
	var paths []string
	require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	sort.Sort(sort.Reverse(sort.StringSlice(paths))) // children first
	ts := []unix.Timespec{unix.NsecToTimespec(baseTime.UnixNano()), unix.NsecToTimespec(baseTime.UnixNano())}
	for _, p := range paths {
		require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

type diffCase struct {
	name   string
	mutate func(t *testing.T, r func(string) string)
	xattr  bool // needs security.* xattrs (CAP_SETFCAP)
}

func must(t *testing.T, err error) {
	t.Helper()
	require.NoError(t, err)
}

func diffCases() []diffCase {
	return []diffCase{
		{name: "unchanged", mutate: func(t *testing.T, r func(string) string) {}},
		{name: "add", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.WriteFile(r("etc/new"), []byte("new"), 0o640))
			must(t, os.MkdirAll(r("opt/app/bin"), 0o750))
			must(t, os.WriteFile(r("opt/app/bin/run"), []byte("run"), 0o755))
		}},
		{name: "modify", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.WriteFile(r("etc/conf"), []byte("conf=2, longer\n"), 0o644))
			// Same size, right after the index: caught by ctime.
			must(t, os.WriteFile(r("etc/same"), []byte("bbbb"), 0o644))
		}},
		{name: "chmod-only", mutate: func(t *testing.T, r func(string) string) {
			must(t, unix.Chmod(r("bin/tool"), 0o4711))
		}},
		{name: "chown", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.Lchown(r("etc/conf"), 1000, 1001))
			must(t, os.Lchown(r("bin/sh"), 5, 6))
		}},
		{name: "touch", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.Chtimes(r("etc/conf"), baseTime, baseTime.Add(time.Hour)))
		}},
		{name: "delete-file", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.Remove(r("etc/conf")))
		}},
		{name: "delete-dir", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.RemoveAll(r("usr/share")))
		}},
		{name: "replace-dir", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.RemoveAll(r("usr/share")))
			must(t, os.MkdirAll(r("usr/share/doc"), 0o755))
			must(t, os.WriteFile(r("usr/share/doc/new"), []byte("n"), 0o644))
		}},
		{name: "dir-to-file", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.RemoveAll(r("usr/share")))
			must(t, os.WriteFile(r("usr/share"), []byte("file now"), 0o644))
		}},
		{name: "file-to-dir", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.Remove(r("etc/conf")))
			must(t, os.Mkdir(r("etc/conf"), 0o755))
			must(t, os.WriteFile(r("etc/conf/a"), []byte("a"), 0o644))
		}},
		{name: "hardlink", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.Link(r("bin/tool"), r("bin/tool2")))
			must(t, os.WriteFile(r("home/a"), []byte("pair"), 0o644))
			must(t, os.Link(r("home/a"), r("home/b")))
			must(t, os.Remove(r("var/lib/state.bak"))) // a link of a set goes
		}},
		{name: "symlink", mutate: func(t *testing.T, r func(string) string) {
			must(t, os.Remove(r("bin/sh")))
			must(t, os.Symlink("/bin/busybox", r("bin/sh")))
			must(t, os.Symlink("../etc/conf", r("home/conf")))
		}},
		{name: "xattr", mutate: func(t *testing.T, r func(string) string) {
			must(t, unix.Lsetxattr(r("etc/conf"), "user.note", []byte("hello"), 0))
		}},
		{name: "capability", xattr: true, mutate: func(t *testing.T, r func(string) string) {
			// cap_net_bind_service+ep, VFS_CAP_REVISION_2.
			v := []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
			must(t, unix.Lsetxattr(r("bin/tool"), "security.capability", v, 0))
		}},
		{name: "fifo", mutate: func(t *testing.T, r func(string) string) {
			must(t, unix.Mkfifo(r("home/pipe"), 0o600))
		}},
		{name: "nested-churn", mutate: func(t *testing.T, r func(string) string) {
			// Package-manager-like: delete, recreate, rename.
			must(t, os.Rename(r("var/lib/state"), r("var/lib/state.old")))
			must(t, os.WriteFile(r("var/lib/state"), []byte("s2"), 0o600))
			must(t, os.Remove(r("usr/share/x")))
			must(t, os.RemoveAll(r("usr/share/doc")))
			must(t, os.Mkdir(r("usr/share/man"), 0o755))
		}},
	}
}

// tarListing describes a layer's entries in order.
func tarListing(t testing.TB, data []byte) string {
	var b strings.Builder
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		fmt.Fprintf(&b, "%s %c %04o %d:%d mtime=%s", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format(time.RFC3339))
		if h.Linkname != "" {
			fmt.Fprintf(&b, " link=%s", h.Linkname)
		}
		if h.Typeflag == tar.TypeReg {
			fmt.Fprintf(&b, " %q", body)
		}
		var keys []string
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%x", strings.TrimPrefix(k, "SCHILY.xattr."), h.PAXRecords[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// treeListing describes every path under root (not the root itself).
func treeListing(t testing.TB, root string) string {
	var lines []string
	require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		line := fmt.Sprintf("%s %o %d:%d nlink=%d", rel, st.Mode, st.Uid, st.Gid, st.Nlink)
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			line += " mtime=" + time.Unix(0, st.Mtim.Nano()).UTC().Format(time.RFC3339Nano)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			line += fmt.Sprintf(" %q", data)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			line += " -> " + target
		}
		x, err := xattrs(p)
		require.NoError(t, err)
		var keys []string
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			line += fmt.Sprintf(" %s=%x", k, x[k])
		}
		lines = append(lines, line)
		return nil
	}))
	return strings.Join(lines, "\n") + "\n"
}

func TestDiffGolden(t *testing.T) {
	ctx := context.Background()
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			root, copyRoot := filepath.Join(tmp, "root"), filepath.Join(tmp, "copy")
			makeBase(t, root)
			makeBase(t, copyRoot)
			if c.xattr && unix.Lsetxattr(filepath.Join(tmp, "root/etc/same"), "security.capability", []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0) != nil {
				t.Skip("security.* extended attributes cannot be set here (needs CAP_SETFCAP)")
			} else if c.xattr {
				require.NoError(t, unix.Lremovexattr(filepath.Join(tmp, "root/etc/same"), "security.capability"))
				fixTimes(t, root)
			}
			s, err := IndexMethod{}.Begin(ctx, root, nil)
			require.NoError(t, err)
			defer s.Close()
			require.Equal(t, root, s.Dir())
			c.mutate(t, func(p string) string { return filepath.Join(root, p) })

			var repro bytes.Buffer
			_, err = s.Diff(ctx, &repro, Options{Epoch: &epoch})
			require.NoError(t, err)
			got := tarListing(t, repro.Bytes())
			golden.String(t, filepath.Join("testdata", c.name, "expected"), got)

			// The layer (times kept) applied over the same base with the
			// project's extractor gives the tree after the command.
			var layer bytes.Buffer
			_, err = s.Diff(ctx, &layer, Options{})
			require.NoError(t, err)
			_, err = extract.Apply(ctx, copyRoot, &layer, extract.Options{})
			require.NoError(t, err)
			require.Equal(t, treeListing(t, root), treeListing(t, copyRoot))
		})
	}
}

// TestCostFollowsChange: in a tree of 2,000 files, one changed file is the
// only content read, and the layer holds it and its parents only.
func TestCostFollowsChange(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for i := range 2000 {
		d := filepath.Join(root, fmt.Sprintf("d%02d", i%40))
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i)), bytes.Repeat([]byte("x"), 1000), 0o644))
	}
	tree, err := Index(ctx, root, nil)
	require.NoError(t, err)
	require.Equal(t, 2040, tree.Len())
	require.NoError(t, os.WriteFile(filepath.Join(root, "d07/f0007"), []byte("changed"), 0o644))
	var buf bytes.Buffer
	st, err := tree.Diff(ctx, &buf, Options{})
	require.NoError(t, err)
	require.Equal(t, Stats{Scanned: 2040, Changed: 2, BytesRead: int64(len("changed"))}, st)
	require.Equal(t, "d07/ 5\nd07/f0007 0\n", entryTypes(t, buf.Bytes()))
}

func entryTypes(t *testing.T, data []byte) string {
	var b strings.Builder
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return b.String()
		}
		require.NoError(t, err)
		fmt.Fprintf(&b, "%s %c\n", h.Name, h.Typeflag)
	}
}

func TestExclude(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc/1"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "cache"), 0o755))
	tree, err := Index(ctx, root, []string{"/proc", "cache/"})
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "proc/1")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "cache/x"), nil, 0o644))
	var buf bytes.Buffer
	st, err := tree.Diff(ctx, &buf, Options{})
	require.NoError(t, err)
	require.Equal(t, 0, st.Changed)
	require.Empty(t, entryTypes(t, buf.Bytes()))
}

func TestDetect(t *testing.T) {
	m, note := Detect(context.Background(), t.TempDir())
	if err := OverlayUsable(context.Background(), t.TempDir()); err != nil {
		require.ErrorIs(t, err, ErrOverlayUnavailable)
		require.Equal(t, "index", m.Name())
		require.Contains(t, note, "metadata index")
		return
	}
	require.Equal(t, "overlay", m.Name())
	require.Equal(t, "overlayfs (the upper directory is the diff)", note)
}

// BenchmarkIndexDiff: a tree of 7,000 files (a Debian minbase's count),
// one file changed between index and diff.
func BenchmarkIndexDiff(b *testing.B) {
	ctx := context.Background()
	root := b.TempDir()
	for i := range 7000 {
		d := filepath.Join(root, fmt.Sprintf("d%03d", i%300))
		require.NoError(b, os.MkdirAll(d, 0o755))
		require.NoError(b, os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i)), bytes.Repeat([]byte("x"), 4096), 0o644))
	}
	for b.Loop() {
		tree, err := Index(ctx, root, nil)
		require.NoError(b, err)
		require.NoError(b, os.WriteFile(filepath.Join(root, "d007/f0007"), []byte("changed"), 0o644))
		st, err := tree.Diff(ctx, io.Discard, Options{})
		require.NoError(b, err)
		require.Equal(b, int64(7), st.BytesRead)
	}
}
