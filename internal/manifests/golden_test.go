package manifests

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/stretchr/testify/require"
)

// readArgs reads a case's args file: `images: ...`, `pin: ...`,
// `value-paths: ...`, `paths: ...`, one per line, repeatable.
func readArgs(t *testing.T, file string) (Options, []string) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var images, vps, paths []string
	pin := PinAuto
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "images":
			images = append(images, v)
		case "pin":
			pin = Pin(v)
		case "value-paths":
			vps = append(vps, v)
		case "paths":
			paths = append(paths, v)
		default:
			t.Fatalf("%s: unknown key %q", file, k)
		}
	}
	var opts Options
	for _, e := range images {
		u, err := ParseUpdate(e, pin)
		require.NoError(t, err)
		opts.Updates = append(opts.Updates, u)
	}
	for _, e := range vps {
		vp, err := ParseValuePath(e)
		require.NoError(t, err)
		opts.ValuePaths = append(opts.ValuePaths, vp)
	}
	return opts, paths
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	}))
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	}))
	return out
}

// TestGolden edits testdata/<case>/original with testdata/<case>/args and
// compares every file, byte for byte, with testdata/<case>/expected.
func TestGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	require.NoError(t, err)
	for _, c := range cases {
		if !c.IsDir() || c.Name() == "fuzz" {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", c.Name())
			opts, paths := readArgs(t, filepath.Join(dir, "args"))
			work := t.TempDir()
			copyTree(t, filepath.Join(dir, "original"), work)
			before := readTree(t, work)
			stats := map[string]os.FileInfo{}
			for f := range before {
				fi, err := os.Stat(filepath.Join(work, f))
				require.NoError(t, err)
				stats[f] = fi
			}

			edits, err := Plan(context.Background(), work, paths, opts)
			require.NoError(t, err)
			for _, e := range edits {
				require.NotEqual(t, string(e.Old), string(e.New), "%s returned without a change", e.Path)
				require.NotEmpty(t, e.Changes)
			}
			require.NoError(t, Write(work, edits))

			golden.Dir(t, filepath.Join(dir, "expected"), work)
			got := readTree(t, work)
			// Files that needed no change were not rewritten.
			edited := map[string]bool{}
			for _, e := range edits {
				edited[e.Path] = true
			}
			for f, fi := range stats {
				if edited[f] {
					continue
				}
				require.Equal(t, before[f], got[f])
				now, err := os.Stat(filepath.Join(work, f))
				require.NoError(t, err)
				require.True(t, os.SameFile(fi, now) && fi.ModTime().Equal(now.ModTime()), "%s was rewritten", f)
			}
			// The in-memory path (a git tree) edits the same way.
			tree := Tree{Files: map[string][]byte{}, Links: map[string]string{}}
			for f, c := range before {
				tree.Files[f] = []byte(c)
			}
			tedits, err := PlanTree(context.Background(), tree, paths, opts)
			require.NoError(t, err)
			require.Len(t, tedits, len(edits))
			for _, e := range tedits {
				require.Equal(t, got[e.Path], string(e.New), "PlanTree: %s", e.Path)
			}
			// Editing again changes nothing: the edit is idempotent.
			again, err := Plan(context.Background(), work, paths, opts)
			require.NoError(t, err)
			require.Empty(t, again, "a second run would change files again")
		})
	}
}
