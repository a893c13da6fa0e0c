package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stage is a Tree standing for a stage: /tmp 1777, /app 0700 1:0 with a
// subdirectory, /opt/current -> /opt/real, /conf -> /real-file.
func stage() *Tree {
	t := NewTree()
	t.Apply([]Entry{
		{Name: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Name: "app", Mode: fs.ModeDir | 0o700, UID: 1},
		{Name: "app/sub", Mode: fs.ModeDir | 0o750, UID: 5, GID: 5},
		{Name: "opt", Mode: fs.ModeDir | 0o755},
		{Name: "opt/real", Mode: fs.ModeDir | 0o755},
		{Name: "opt/current", Mode: fs.ModeSymlink | 0o777, Linkname: "/opt/real"},
		{Name: "real-file", Mode: 0o644},
		{Name: "conf", Mode: fs.ModeSymlink | 0o777, Linkname: "/real-file"},
		{Name: "file", Mode: 0o644},
	})
	return t
}

// TestPlannerFollowsBuildKit pins the copy rules the differential tests
// (test/differential) check against BuildKit, so a change shows here
// first, without the rig.
func TestPlannerFollowsBuildKit(t *testing.T) {
	dir := tree(t, map[string]string{"a.txt": "a", "b.txt": "b", "src/x": "x", "src/sub/y": "y", "src/skip.md": "s", "src/deep/skip.md": "d"})
	require.NoError(t, os.Chmod(filepath.Join(dir, "src"), 0o700))
	require.NoError(t, os.Symlink("src/sub", filepath.Join(dir, "sublink")))
	c, err := OpenContext(dir, "")
	require.NoError(t, err)
	owner := &Owner{UID: 10, GID: 20}
	octal := func(m fs.FileMode) fs.FileMode { return 0o640 }
	cases := []struct {
		name string
		spec CopySpec
		want []string
	}{
		{"a file to a new path: parents made 0755 root", CopySpec{Path: "a.txt", Dest: "/new/f"}, []string{"new 0755 0:0 dir", "new/f 0644 0:0"}},
		{"into an existing directory without a slash; /tmp keeps 1777", CopySpec{Path: "a.txt", Dest: "/tmp"}, []string{"tmp 1777 0:0 dir", "tmp/a.txt 0644 0:0"}},
		{"a wildcard", CopySpec{Path: "*.txt", Dest: "/g/"}, []string{"g 0755 0:0 dir", "g/a.txt 0644 0:0", "g/b.txt 0644 0:0"}},
		{"a wildcard that matches nothing copies nothing", CopySpec{Path: "none*", Dest: "/n/"}, nil},
		{"a directory's contents; the new top is 0755, not the source's 0700; --chown owns what is made",
			CopySpec{Path: "src", Dest: "/dst", Owner: owner}, []string{"dst 0755 10:20 dir", "dst/deep 0755 10:20 dir", "dst/deep/skip.md 0644 10:20", "dst/skip.md 0644 10:20", "dst/sub 0755 10:20 dir", "dst/sub/y 0644 10:20", "dst/x 0644 10:20"}},
		{"an existing top directory keeps its attributes; one below takes the source's",
			CopySpec{Path: "src", Dest: "/app"}, []string{"app 0700 1:0 dir", "app/deep 0755 0:0 dir", "app/deep/skip.md 0644 0:0", "app/skip.md 0644 0:0", "app/sub 0755 0:0 dir", "app/sub/y 0644 0:0", "app/x 0644 0:0"}},
		{"--exclude matches paths inside the copied directory", CopySpec{Path: "src", Dest: "/e/", Excludes: []string{"*.md"}},
			[]string{"e 0755 0:0 dir", "e/deep 0755 0:0 dir", "e/deep/skip.md 0644 0:0", "e/sub 0755 0:0 dir", "e/sub/y 0644 0:0", "e/x 0644 0:0"}},
		{"a source that is a symlink is followed", CopySpec{Path: "sublink", Dest: "/l"}, []string{"l 0755 0:0 dir", "l/y 0644 0:0"}},
		{"a source with a leading slash is the context root", CopySpec{Path: "/a.txt", Dest: "/r"}, []string{"r 0644 0:0"}},
		{"a destination through a symlinked directory lands in its target", CopySpec{Path: "a.txt", Dest: "/opt/current/"}, []string{"opt 0755 0:0 dir", "opt/real 0755 0:0 dir", "opt/real/a.txt 0644 0:0"}},
		{"a destination that is a symlink to a file replaces the file", CopySpec{Path: "a.txt", Dest: "/conf"}, []string{"real-file 0644 0:0"}},
		{"an octal --chmod makes the missing parents with its bits", CopySpec{Path: "a.txt", Dest: "/o/f", Chmod: octal, DirMode: 0o640}, []string{"o 0640 0:0 dir", "o/f 0640 0:0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPlanner(stage())
			tc.spec.Source = c
			require.NoError(t, p.Copy(tc.spec))
			require.Equal(t, tc.want, describe(p.Entries()))
		})
	}
	t.Run("a missing source is an error", func(t *testing.T) {
		err := NewPlanner(stage()).Copy(CopySpec{Source: c, Path: "nothere", Dest: "/x"})
		var nf *NotFoundError
		require.ErrorAs(t, err, &nf)
	})
	t.Run("a file over a directory is an error", func(t *testing.T) {
		err := NewPlanner(stage()).Copy(CopySpec{Source: c, Path: "a.txt", Dest: "/app/sub/"})
		require.NoError(t, err)
		m := NewMemSource()
		m.Add("sub", []byte("x"), 0o644, zeroTime)
		err = NewPlanner(stage()).Copy(CopySpec{Source: m, Path: "sub", Dest: "/app/"})
		require.ErrorContains(t, err, "cannot replace the directory /app/sub with a file")
	})
	t.Run("WORKDIR makes missing parents for the user and leaves an existing one", func(t *testing.T) {
		p := NewPlanner(stage())
		require.NoError(t, p.Mkdir("/opt/current/w/x", owner))
		require.Equal(t, []string{"opt 0755 0:0 dir", "opt/real 0755 0:0 dir", "opt/real/w 0755 10:20 dir", "opt/real/w/x 0755 10:20 dir"}, describe(p.Entries()))
		p = NewPlanner(stage())
		require.NoError(t, p.Mkdir("/tmp", owner))
		require.False(t, p.Changed())
	})
}

// describe prints entries as "name mode uid:gid [dir|-> link]".
func describe(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		s := e.Name + " " + modeString(e.Mode) + " " + itoa(e.UID) + ":" + itoa(e.GID)
		switch {
		case e.Mode.IsDir():
			s += " dir"
		case e.Mode&fs.ModeSymlink != 0:
			s += " -> " + e.Linkname
		}
		out = append(out, s)
	}
	return out
}

func TestUnpackAsMobyUntar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1234, Gid: 5678},
		{Name: "./d/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 5678},
		{Name: "./d/f", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1234, Gid: 5678, Size: 1},
		{Name: "./d/hard", Typeflag: tar.TypeLink, Linkname: "./d/f"},
		{Name: "./s", Typeflag: tar.TypeSymlink, Linkname: "d/f"},
	} {
		require.NoError(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, _ = tw.Write([]byte("x"))
		}
	}
	require.NoError(t, tw.Close())
	dir := tree(t, map[string]string{"a.tar": buf.String()})
	c, err := OpenContext(dir, "")
	require.NoError(t, err)
	p := NewPlanner(stage())
	require.NoError(t, p.Copy(CopySpec{Source: c, Path: "a.tar", Dest: "/dest", Unpack: true}))
	require.Equal(t, []string{"dest 0755 0:0 dir", "dest/d 0750 1234:5678 dir", "dest/d/f 0600 1234:5678", "dest/d/hard 0600 1234:5678", "dest/s 0777 0:0 -> d/f"}, describe(p.Entries()),
		"the archive's root entry does not change the destination (made 0755 root)")
	require.Equal(t, "dest/d/f", p.changed["dest/d/hard"].Hardlink)
	p = NewPlanner(stage())
	require.NoError(t, p.Copy(CopySpec{Source: c, Path: "a.tar", Dest: "/app", Unpack: true}))
	require.Equal(t, "app 0700 1:0 dir", describe(p.Entries())[0], "an existing destination keeps its attributes")
}

func TestExtractRefusesEscapes(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "ok/../../etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}))
	_, _ = tw.Write([]byte("x"))
	require.NoError(t, tw.Close())
	dir := tree(t, map[string]string{"evil.tar": buf.String()})
	c, err := OpenContext(dir, "")
	require.NoError(t, err)
	err = NewPlanner(Empty{}).Copy(CopySpec{Source: c, Path: "evil.tar", Dest: "/opt", Unpack: true})
	require.ErrorContains(t, err, `archive entry "ok/../../etc/passwd" leaves the destination`)
}

func TestDockerignoreExceptions(t *testing.T) {
	dir := tree(t, map[string]string{"Dockerfile": "", ".dockerignore": "logs\n!logs/keep.log\n", "logs/a.log": "", "logs/keep.log": "", "x": ""})
	c, err := OpenContext(dir, filepath.Join(dir, "Dockerfile"))
	require.NoError(t, err)
	p := NewPlanner(Empty{})
	require.NoError(t, p.Copy(CopySpec{Source: c, Path: ".", Dest: "/"}))
	var names []string
	for _, e := range p.Entries() {
		names = append(names, e.Name)
	}
	require.Equal(t, []string{".dockerignore", "Dockerfile", "logs", "logs/keep.log", "x"}, names)
}

func TestTreeAppliesWhiteouts(t *testing.T) {
	layer := func(hs ...*tar.Header) *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			require.NoError(t, tw.WriteHeader(h))
		}
		require.NoError(t, tw.Close())
		return &buf
	}
	tr := NewTree()
	require.NoError(t, tr.ApplyTar(layer(
		&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "a/x", Typeflag: tar.TypeReg},
		&tar.Header{Name: "b/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "b/y", Typeflag: tar.TypeReg},
		&tar.Header{Name: "c", Typeflag: tar.TypeReg},
	), nil))
	require.NoError(t, tr.ApplyTar(layer(
		&tar.Header{Name: "a/.wh..wh..opq", Typeflag: tar.TypeReg},
		&tar.Header{Name: "a/new", Typeflag: tar.TypeReg},
		&tar.Header{Name: ".wh.b", Typeflag: tar.TypeReg},
		&tar.Header{Name: "c/", Typeflag: tar.TypeDir, Mode: 0o700},
	), nil))
	for name, want := range map[string]bool{"a": true, "a/x": false, "a/new": true, "b": false, "b/y": false, "c": true} {
		_, ok := tr.Lstat(name)
		require.Equal(t, want, ok, name)
	}
}

var zeroTime = time.Time{}

func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

func itoa(i int) string { return strconv.Itoa(i) }
