package layer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		p := filepath.Join(dir, n)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(c), 0o644))
	}
	return dir
}

func describe(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		s := fmt.Sprintf("%s %04o %d:%d", e.Name, uint32(e.Mode.Perm()), e.UID, e.GID)
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

func TestCopySemantics(t *testing.T) {
	dir := tree(t, map[string]string{"a.txt": "a", "b.txt": "b", "src/x": "x", "src/sub/y": "y", "src/skip.tmp": "s"})
	require.NoError(t, os.Symlink("src/sub", filepath.Join(dir, "sublink")))
	c, err := OpenContext(dir, "")
	require.NoError(t, err)
	owner := &Owner{UID: 10, GID: 20}
	cases := []struct {
		name    string
		sources []string
		o       CopyOptions
		want    []string
	}{
		{"file to a file", []string{"a.txt"}, CopyOptions{Dest: "/opt/f"}, []string{"opt 0755 0:0 dir", "opt/f 0644 0:0"}},
		{"file into a dir", []string{"a.txt"}, CopyOptions{Dest: "/opt", DestDir: true}, []string{"opt 0755 0:0 dir", "opt/a.txt 0644 0:0"}},
		{"glob", []string{"*.txt"}, CopyOptions{Dest: "/g"}, []string{"g 0755 0:0 dir", "g/a.txt 0644 0:0", "g/b.txt 0644 0:0"}},
		{"dir contents, owner on created parents", []string{"src"}, CopyOptions{Dest: "/app/src", Owner: owner, Excludes: []string{"*.tmp"}},
			[]string{"app 0755 10:20 dir", "app/src 0755 10:20 dir", "app/src/sub 0755 10:20 dir", "app/src/sub/y 0644 10:20", "app/src/x 0644 10:20"}},
		{"existing parent keeps its attributes", []string{"a.txt"}, CopyOptions{Dest: "/app/", DestDir: true, Owner: owner,
			Existing: func(n string) (Entry, bool) { return Entry{Mode: fs.ModeDir | 0o700, UID: 1}, n == "app" }}, []string{"app 0700 1:0 dir", "app/a.txt 0644 10:20"}},
		{"symlink inside is followed as a source", []string{"sublink"}, CopyOptions{Dest: "/l"}, []string{"l 0755 0:0 dir", "l/y 0644 0:0"}},
		{"chmod", []string{"a.txt"}, CopyOptions{Dest: "/c", Chmod: func(fs.FileMode, bool) fs.FileMode { return 0o711 }}, []string{"c 0711 0:0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Copy(tc.sources, tc.o)
			require.NoError(t, err)
			require.Equal(t, tc.want, describe(got))
		})
	}
}

func TestDockerignoreExceptions(t *testing.T) {
	dir := tree(t, map[string]string{"Dockerfile": "", ".dockerignore": "logs\n!logs/keep.log\n", "logs/a.log": "", "logs/keep.log": "", "x": ""})
	c, err := OpenContext(dir, filepath.Join(dir, "Dockerfile"))
	require.NoError(t, err)
	got, err := c.Copy([]string{"."}, CopyOptions{Dest: "/", DestDir: true})
	require.NoError(t, err)
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	require.Equal(t, []string{".dockerignore", "Dockerfile", "logs", "logs/keep.log", "x"}, names)
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
	require.True(t, IsArchive(filepath.Join(dir, "evil.tar")))
	_, err = c.Extract("evil.tar", "/opt", CopyOptions{})
	require.ErrorContains(t, err, `archive entry "ok/../../etc/passwd" leaves the destination`)
}

func TestBuildIsDeterministicAndDecompresses(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	data := bytes.Repeat([]byte("0123456789"), 300000) // several pgzip blocks
	entries := []Entry{
		{Name: "d", Mode: fs.ModeDir | 0o755, ModTime: epoch},
		{Name: "d/big", Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }},
		{Name: "d/link", Mode: fs.ModeSymlink | 0o777, Linkname: "big", ModTime: epoch},
	}
	want, err := DiffIDOf(entries)
	require.NoError(t, err)
	for _, comp := range []Compression{Gzip, Zstd} {
		var digests []string
		for i := 0; i < 2; i++ {
			l, err := Build(entries, comp, OCI, t.TempDir())
			require.NoError(t, err)
			d, err := l.Digest()
			require.NoError(t, err)
			digests = append(digests, d.String())
			diffID, err := l.DiffID()
			require.NoError(t, err)
			require.Equal(t, want, diffID)
			rc, err := l.Uncompressed()
			require.NoError(t, err)
			h := sha256.New()
			_, err = io.Copy(h, rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, want.Hex, hex.EncodeToString(h.Sum(nil)))
			rc, err = l.Compressed()
			require.NoError(t, err)
			h = sha256.New()
			n, err := io.Copy(h, rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			size, _ := l.Size()
			require.Equal(t, size, n)
			require.Equal(t, d.Hex, hex.EncodeToString(h.Sum(nil)))
			mt, _ := l.MediaType()
			require.Equal(t, MediaType(comp, OCI), mt)
			require.NoError(t, l.Close())
		}
		require.Equal(t, digests[0], digests[1], "%s output depends only on the input", comp)
	}
}
