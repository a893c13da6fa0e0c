package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hoist-ci/hoist/internal/extract"
	"github.com/hoist-ci/hoist/internal/snapshot"
)

// baseAndReplica makes two identical stage roots, down to their times, as
// if both were extracted from one image: one for the command, one to
// apply its layer to.
func baseAndReplica(t *testing.T) (string, string) {
	t.Helper()
	base := func() string {
		root := newRoot(t)
		for p, c := range map[string]string{"etc/x": "x", "var/old": "old", "var/cache/stale": "s", "var/keep": "k"} {
			require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
		}
		return root
	}
	root, replica := base(), base()
	require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		return unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(replica, rel), []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}))
	return root, replica
}

// TestRunSnapshotApply is the RUN pipeline on its foundations: index the
// root, run a command in the sandbox, write the diff as a layer, apply it
// with the extractor to a copy of the base: the copy equals the root.
func TestRunSnapshotApply(t *testing.T) {
	ctx := context.Background()
	root, replica := baseAndReplica(t)

	s, err := snapshot.IndexMethod{}.Begin(ctx, root, nil)
	require.NoError(t, err)
	defer s.Close()
	var out bytes.Buffer
	self, err := os.Executable()
	require.NoError(t, err)
	_, err = Run(ctx, Command{Root: s.Dir(), Args: []string{"helper", "churn"}, Init: self, Stdout: &out, Stderr: &out}, Auto)
	require.NoError(t, err, out.String())

	var layer bytes.Buffer
	st, err := s.Diff(ctx, &layer, snapshot.Options{})
	require.NoError(t, err)
	require.Equal(t, 1, st.Opaque, "/var/cache was replaced")
	// /etc/x changed mode and owner: a layer has no metadata-only entry.
	require.Equal(t, int64(len("new")+len("pkg")+len("x")), st.BytesRead, "only the changed files were read")

	_, err = extract.Apply(ctx, replica, &layer, extract.Options{})
	require.NoError(t, err)
	require.Equal(t, describe(t, root), describe(t, replica))
}

func describe(t *testing.T, root string) []string {
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		line := fmt.Sprintf("%s %o %d:%d n=%d", rel, st.Mode, st.Uid, st.Gid, st.Nlink)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			line += fmt.Sprintf(" %x mtime=%d", data, st.Mtim.Nano())
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case unix.S_IFDIR:
			line += fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
		}
		out = append(out, line)
		return nil
	}))
	return out
}
