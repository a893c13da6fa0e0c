// Package golden is the one golden-file helper of hoist's tests: a test
// compares what it made with a file (File) or a directory tree (Dir) under
// testdata, and `go test ./pkg -update` rewrites them from what the test
// made (review the diff: a change of a golden file is a change of
// behaviour). It is for tests only.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the tests make (review the diff)")

// Update reports whether the test run rewrites golden files (-update).
func Update() bool { return *update }

// File compares got with the golden file at path; with -update it writes
// got there (and its directories) instead.
func File(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file %s: go test -run %s -update creates it", path, t.Name())
	require.Equal(t, string(want), string(got), "golden file %s (-update rewrites it; review the diff)", path)
}

// String is File for text.
func String(t testing.TB, path, got string) {
	t.Helper()
	File(t, path, []byte(got))
}

// Dir compares the tree got with the golden tree want: the same files
// (regular files and symbolic links; empty directories aside), with the
// same content and link targets. With -update, want is replaced by a copy
// of got.
func Dir(t testing.TB, want, got string) {
	t.Helper()
	gotFiles := readTree(t, got)
	if *update {
		require.NoError(t, os.RemoveAll(want))
		for name, content := range gotFiles {
			p := filepath.Join(want, name)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			if target, ok := bytes.CutPrefix(content, []byte(linkMark)); ok {
				require.NoError(t, os.Symlink(string(target), p))
				continue
			}
			require.NoError(t, os.WriteFile(p, content, 0o644))
		}
		return
	}
	wantFiles := readTree(t, want)
	var diffs []string
	for _, name := range sortedKeys(wantFiles, gotFiles) {
		w, wok := wantFiles[name]
		g, gok := gotFiles[name]
		switch {
		case !gok:
			diffs = append(diffs, name+": missing")
		case !wok:
			diffs = append(diffs, name+": not in the golden tree")
		case !bytes.Equal(w, g):
			diffs = append(diffs, fmt.Sprintf("%s: differs\n--- want\n%s\n--- got\n%s", name, w, g))
		}
	}
	require.Empty(t, diffs, "tree %s against the golden %s (-update rewrites it; review the diff)", got, want)
}

// linkMark starts the content recorded for a symbolic link.
const linkMark = "\x00symlink -> "

func readTree(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = []byte(linkMark + target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = data
		}
		return nil
	})
	if *update && os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	return out
}

func sortedKeys(ms ...map[string][]byte) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
