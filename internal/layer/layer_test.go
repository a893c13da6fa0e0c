package layer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
