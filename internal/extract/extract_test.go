package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// outsideMark stands for the absolute path of the directory next to the
// root that no layer may touch.
const outsideMark = "@OUTSIDE@"

// ent is a tar entry of a crafted layer. Names and link names may contain
// outsideMark.
type ent struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	body       string
	xattrs     map[string]string
	major      int64
}

func reg(name, body string) ent { return ent{name: name, typ: tar.TypeReg, mode: 0o644, body: body} }
func dir(name string) ent       { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func sym(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hard(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// TarOf writes a layer tar; it is the generator of the crafted layers.
func tarOf(t testing.TB, outside string, entries []ent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: strings.ReplaceAll(e.name, outsideMark, outside), Linkname: strings.ReplaceAll(e.link, outsideMark, outside),
			Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Size: int64(len(e.body)),
			ModTime: mtime, Format: tar.FormatPAX, Devmajor: e.major, Devminor: 3,
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[paxXattr+k] = v
		}
		require.NoError(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

type extractCase struct {
	name    string
	layers  [][]ent
	wantErr string // substring of the error of the last layer
	opts    Options
	mknod   bool // needs a permitted mknod
}

func cases() []extractCase {
	capV3 := string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	return []extractCase{
		{name: "dotdot", layers: [][]ent{{reg("../outside/evil", "x"), reg("a/../../../evil2", "x"), reg("./../x/../evil3", "x")}}},
		{name: "absolute-name", layers: [][]ent{{reg(outsideMark+"/evil", "x"), reg("/etc/passwd", "root:x:0:0::/root:/bin/sh\n")}}},
		{name: "absolute-symlink-parent", layers: [][]ent{{sym("link", outsideMark), reg("link/evil", "x"), sym("root", "/"), reg("root/../../evil4", "x")}}},
		{name: "relative-symlink-parent", layers: [][]ent{{sym("rel", "../outside"), reg("rel/evil", "x"), sym("deep", "../../../../../../../../.."), reg("deep/evil5", "x")}}},
		{name: "symlink-parent-across-layers", layers: [][]ent{{sym("d", outsideMark)}, {reg("d/evil", "x"), dir("d/sub"), reg("d/sub/evil", "x")}}},
		{name: "symlink-chain", layers: [][]ent{{sym("a", "b"), sym("b", "c/.."), dir("c"), sym("c/up", "../../../.."), reg("a/c/up/evil", "x")}}},
		{name: "symlink-loop", layers: [][]ent{{sym("l1", "l2"), sym("l2", "l1"), reg("l1/evil", "x")}}, wantErr: "too many levels"},
		{name: "file-over-symlink", layers: [][]ent{{sym("f", outsideMark+"/secret"), reg("f", "replaced")}}},
		{name: "dir-over-symlink", layers: [][]ent{{sym("d", outsideMark), dir("d"), reg("d/x", "x")}}},
		{name: "hardlink-dotdot", layers: [][]ent{{hard("h", "../outside/secret")}}, wantErr: "no such file"},
		{name: "hardlink-absolute", layers: [][]ent{{hard("h", outsideMark+"/secret")}}, wantErr: "no such file"},
		{name: "hardlink-through-symlink", layers: [][]ent{{sym("s", outsideMark), hard("h", "s/secret")}}, wantErr: "no such file"},
		{name: "hardlink-to-symlink", layers: [][]ent{{sym("s", outsideMark+"/secret"), hard("h", "s"), reg("in", "in"), hard("h2", "in")}}},
		{name: "whiteout-through-symlink", layers: [][]ent{{sym("s", outsideMark)}, {reg("s/.wh.secret", ""), reg("s/.wh..wh..opq", ""), reg("../outside/.wh.secret", "")}}},
		{name: "whiteout-invalid", layers: [][]ent{{reg(".wh..", "")}}, wantErr: "invalid whiteout"},
		{name: "device-not-permitted", layers: [][]ent{{{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1}, reg("after", "x")}},
			opts: Options{mknod: func(int, string, uint32, int) error { return unix.EPERM }}},
		{name: "device", mknod: true, layers: [][]ent{{{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1}, {name: "fifo", typ: tar.TypeFifo, mode: 0o600}}}},
		{name: "whiteouts", layers: [][]ent{
			{dir("a"), reg("a/x", "x"), reg("a/y", "y"), dir("b"), reg("b/z", "z"), dir("c"), reg("c/k", "k"), dir("c/sub"), reg("c/sub/k", "k")},
			{reg("a/.wh.x", ""), reg(".wh.b", ""), reg(".wh.missing", ""), dir("c"), reg("c/.wh..wh..opq", ""), reg("c/new", "n")},
		}},
		{name: "opaque-after-children", layers: [][]ent{
			{dir("c"), reg("c/old", "o"), dir("c/d"), reg("c/d/old", "o")},
			{reg("c/new", "n"), dir("c/d"), reg("c/d/new", "n"), reg("c/.wh..wh..opq", "")},
		}},
		{name: "replace", layers: [][]ent{
			{dir("d"), reg("d/x", "x"), reg("f", "f"), sym("l", "d")},
			{reg("d", "now a file"), dir("f"), reg("f/x", "x"), dir("l")},
		}},
		{name: "metadata", layers: [][]ent{{
			{name: "suid", typ: tar.TypeReg, mode: 0o4755, uid: 1000, gid: 1001, body: "s"},
			{name: "sticky", typ: tar.TypeDir, mode: 0o1777, uid: 2, gid: 3},
			{name: "sticky/f", typ: tar.TypeReg, mode: 0o600, uid: 4, gid: 5, body: "f"},
			{name: "cap", typ: tar.TypeReg, mode: 0o755, body: "c", xattrs: map[string]string{"security.capability": capV3, "user.note": "hi"}},
			{name: "owned-link", typ: tar.TypeSymlink, link: "suid", uid: 7, gid: 8},
		}}},
	}
}

// setup makes <tmp>/root and <tmp>/outside/secret and returns both.
func setup(t testing.TB) (string, string) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	outside := filepath.Join(tmp, "outside")
	require.NoError(t, os.Mkdir(root, 0o755))
	require.NoError(t, os.Mkdir(outside, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	return root, outside
}

// Listing describes every file under dir, one line each, sorted.
func listing(t testing.TB, dir string, replace ...string) string {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s %04o %d:%d", rel, kind(st.Mode), st.Mode&0o7777, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %q nlink=%d", data, st.Nlink)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// Directories made implicitly have the time of the run.
			if time.Unix(st.Mtim.Unix()).Equal(mtime) {
				line += " mtime=layer"
			} else {
				line += " mtime=other"
			}
		}
		line += xattrList(p)
		for i := 0; i+1 < len(replace); i += 2 {
			k, v := replace[i], replace[i+1]
			if strings.HasPrefix(k, rel+"/") {
				return nil // a directory above the mirrored outside path: its name is the test's
			}
			line = strings.ReplaceAll(line, k, v)
		}
		lines = append(lines, line)
		return nil
	})
	require.NoError(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func kind(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFREG:
		return "file"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	case unix.S_IFIFO:
		return "fifo"
	}
	return "other"
}

func xattrList(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" && !strings.HasPrefix(s, "security.selinux") {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	out := ""
	for _, name := range names {
		v := make([]byte, 256)
		m, err := unix.Lgetxattr(p, name, v)
		if err == nil {
			out += fmt.Sprintf(" %s=%x", name, v[:m])
		}
	}
	return out
}

func TestCraftedLayers(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			root, outside := setup(t)
			if c.mknod && unix.Mknod(filepath.Join(root, "probe"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))) != nil {
				t.Skip("mknod is not permitted here; the skip path is tested by device-not-permitted")
			}
			_ = os.Remove(filepath.Join(root, "probe"))
			before := listing(t, filepath.Dir(root))
			var err error
			for i, l := range c.layers {
				data := tarOf(t, outside, l)
				if golden.Update() {
					writeSeed(t, c.name, i, tarOf(t, "/tmp/hoist-fuzz-outside", l))
				}
				_, err = Apply(context.Background(), root, bytes.NewReader(data), c.opts)
				if i < len(c.layers)-1 {
					require.NoError(t, err)
				}
			}
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
			} else {
				require.NoError(t, err)
			}
			// Nothing outside the root changed: the walk of the parent
			// minus the root is the same.
			after := listing(t, filepath.Dir(root))
			require.Equal(t, withoutRoot(before), withoutRoot(after), "outside the root changed")
			secret, err := os.ReadFile(filepath.Join(outside, "secret"))
			require.NoError(t, err)
			require.Equal(t, "secret", string(secret))

			got := listing(t, root, outside, outsideMark, strings.TrimPrefix(outside, "/"), outsideMark)
			golden.String(t, filepath.Join("testdata", c.name, "expected"), got)
		})
	}
}

func withoutRoot(l string) string {
	var out []string
	for _, line := range strings.Split(l, "\n") {
		if line == "" || strings.HasPrefix(line, "root ") || strings.HasPrefix(line, "root/") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func writeSeed(t testing.TB, name string, i int, data []byte) {
	dir := filepath.Join("testdata", "fuzz", "FuzzApply")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", name, i)), []byte(body), 0o644))
}

func TestDeviceSkippedWarns(t *testing.T) {
	root, outside := setup(t)
	var logs bytes.Buffer
	o := Options{Log: newLogger(&logs), mknod: func(int, string, uint32, int) error { return unix.EPERM }}
	st, err := Apply(context.Background(), root, bytes.NewReader(tarOf(t, outside, []ent{{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660, major: 8}})), o)
	require.NoError(t, err)
	require.Equal(t, 1, st.Skipped)
	require.Contains(t, logs.String(), "device node skipped")
	require.Contains(t, logs.String(), "/dev/sda")
}

func TestRootIsASymlink(t *testing.T) {
	root, outside := setup(t)
	link := filepath.Join(filepath.Dir(root), "rootlink")
	require.NoError(t, os.Symlink(root, link))
	_, err := Apply(context.Background(), link, bytes.NewReader(tarOf(t, outside, []ent{reg("a", "a")})), Options{})
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "a"))
}

func TestCancelled(t *testing.T) {
	root, outside := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, root, bytes.NewReader(tarOf(t, outside, []ent{reg("a", "a")})), Options{})
	require.True(t, errors.Is(err, context.Canceled))
}

// FuzzApply feeds arbitrary tars to the extractor: it may fail, but never
// panics and never changes anything next to the root.
func FuzzApply(f *testing.F) {
	f.Add(tarOf(f, "/tmp/hoist-fuzz-outside", []ent{reg("../outside/evil", "x")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, _ := setup(t)
		before := withoutRoot(listing(t, filepath.Dir(root)))
		_, _ = Apply(context.Background(), root, bytes.NewReader(data), Options{})
		_, _ = Apply(context.Background(), root, bytes.NewReader(data), Options{})
		require.Equal(t, before, withoutRoot(listing(t, filepath.Dir(root))))
	})
}

func newLogger(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

func TestLayersInOrder(t *testing.T) {
	root, outside := setup(t)
	var layers []v1.Layer
	for _, l := range [][]ent{{dir("a"), reg("a/x", "1"), reg("a/y", "y")}, {reg("a/x", "2"), reg("a/.wh.y", "")}} {
		data := tarOf(t, outside, l)
		tl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		require.NoError(t, err)
		layers = append(layers, tl)
	}
	st, err := Layers(context.Background(), root, layers, Options{})
	require.NoError(t, err)
	require.Equal(t, Stats{Entries: 5, Bytes: 3, Whiteouts: 1, Footprint: 3 << 12}, st)
	got, err := os.ReadFile(filepath.Join(root, "a/x"))
	require.NoError(t, err)
	require.Equal(t, "2", string(got))
	require.NoFileExists(t, filepath.Join(root, "a/y"))
}

func TestReadOnlyDirectoryFilled(t *testing.T) {
	root, outside := setup(t)
	_, err := Apply(context.Background(), root, bytes.NewReader(tarOf(t, outside, []ent{
		{name: "ro", typ: tar.TypeDir, mode: 0o555}, reg("ro/f", "f"), {name: "ro/sub", typ: tar.TypeDir, mode: 0o500}, reg("ro/sub/g", "g"),
	})), Options{})
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(root, "ro/sub"))
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o500), fi.Mode().Perm())
	require.FileExists(t, filepath.Join(root, "ro/sub/g"))
}

// TestMaxBytes: extraction stops before the file that would pass the
// bound (counted in whole 4 KiB pages, across layers), with ErrTooLarge.
func TestMaxBytes(t *testing.T) {
	layer := func(files map[string]int) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, n := range []string{"a", "b", "c"} {
			size, ok := files[n]
			if !ok {
				continue
			}
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}))
			_, err := tw.Write(make([]byte, size))
			require.NoError(t, err)
		}
		require.NoError(t, tw.Close())
		return buf.Bytes()
	}
	root := t.TempDir()
	st, err := Apply(context.Background(), root, bytes.NewReader(layer(map[string]int{"a": 5000, "b": 9000, "c": 1})), Options{MaxBytes: 16 << 10})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "b: the layers unpack to more than the limit of 0 MiB")
	require.Equal(t, int64(8<<10), st.Footprint, "a takes two pages")
	require.FileExists(t, filepath.Join(root, "a"))
	require.NoFileExists(t, filepath.Join(root, "b"))

	root = t.TempDir()
	l1 := static.NewLayer(layer(map[string]int{"a": 4096}), types.DockerUncompressedLayer)
	l2 := static.NewLayer(layer(map[string]int{"b": 4096, "c": 4097}), types.DockerUncompressedLayer)
	st, err = Layers(context.Background(), root, []v1.Layer{l1, l2}, Options{MaxBytes: 12 << 10})
	require.ErrorIs(t, err, ErrTooLarge, "4 KiB + 4 KiB + 8 KiB")
	require.Equal(t, int64(8<<10), st.Footprint)
	st, err = Layers(context.Background(), t.TempDir(), []v1.Layer{l1, l2}, Options{MaxBytes: 16 << 10})
	require.NoError(t, err)
	require.Equal(t, int64(16<<10), st.Footprint)
}
