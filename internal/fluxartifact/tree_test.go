package fluxartifact

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func paths(tree *Tree) []string {
	var out []string
	for _, f := range tree.Files {
		out = append(out, f.Path)
	}
	return out
}

func TestCollectHonoursSourceignoreAndIgnorePaths(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		".sourceignore":            "# generated\nsecrets/\n*.bak\n!keep.bak\n",
		"app/.sourceignore":        "local.yaml\n",
		"app/deploy.yaml":          "a: 1\n",
		"app/local.yaml":           "a: 2\n",
		"local.yaml":               "a: 3\n",
		"secrets/token":            "x",
		"old.bak":                  "x",
		"keep.bak":                 "x",
		"tmp/scratch.yaml":         "x: 1\n",
		".github/workflows/ci.yml": "on: push\n",
	})
	tree, err := Collect(dir, []string{"tmp/"})
	require.NoError(t, err)
	require.Equal(t, []string{".", ".github", ".github/workflows", ".github/workflows/ci.yml", ".sourceignore",
		"app", "app/.sourceignore", "app/deploy.yaml", "keep.bak", "local.yaml"}, paths(tree))
}

// TestDigestIgnoresUmaskAndTime: the same content gives the same tarball
// whatever the checkout's modes (GitLab's docker executor checks out with
// umask 0000) and file times.
func TestDigestIgnoresUmaskAndTime(t *testing.T) {
	files := map[string]string{"a/b.yaml": "b: 1\n", "c.yaml": "c: 1\n", "run.sh*": "#!/bin/sh\n"}
	one := writeTree(t, t.TempDir(), files)
	two := writeTree(t, t.TempDir(), files)
	require.NoError(t, filepath.Walk(two, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		mode := fi.Mode().Perm() | 0o022
		if fi.IsDir() {
			mode = 0o777
		}
		require.NoError(t, os.Chmod(p, mode))
		return os.Chtimes(p, time.Now(), time.Unix(1234567890, 0))
	}))
	tgz := func(dir string) []byte {
		tree, err := Collect(dir, nil)
		require.NoError(t, err)
		b, err := tree.Tarball()
		require.NoError(t, err)
		return b
	}
	first := tgz(one)
	require.Equal(t, first, tgz(one), "two runs differ")
	require.Equal(t, first, tgz(two), "modes or times changed the tarball")
	tree, err := Collect(one, nil)
	require.NoError(t, err)
	f, ok := tree.Lookup("run.sh")
	require.True(t, ok)
	require.Equal(t, os.FileMode(0o755), f.Mode)
}

func TestCollectRefusesAFile(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"a.yaml": "a: 1\n"})
	_, err := Collect(filepath.Join(dir, "a.yaml"), nil)
	require.ErrorContains(t, err, "is not a directory")
	_, err = Collect(filepath.Join(dir, "missing"), nil)
	require.ErrorContains(t, err, "missing")
}
