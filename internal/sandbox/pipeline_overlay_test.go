package sandbox

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/extract"
	"github.com/hoist-ci/hoist/internal/snapshot"
)

// TestRunOverlaySnapshotApply is TestRunSnapshotApply with the overlay
// method: the command runs in the merged mount (under namespaces its init
// mounts /proc, /dev and /sys there, in its own mount namespace), the
// layer is the upper directory, and after Close the root is the tree the
// command left, equal to the layer applied over a copy of the base.
func TestRunOverlaySnapshotApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	ctx := context.Background()
	self, err := os.Executable()
	require.NoError(t, err)
	for _, iso := range []Isolation{Namespaces, Chroot} {
		t.Run(string(iso), func(t *testing.T) {
			root, replica := baseAndReplica(t)
			require.NoError(t, snapshot.OverlayUsable(ctx, t.TempDir()), "running as root, overlayfs must mount here")

			s, err := snapshot.OverlayMethod{Scratch: t.TempDir()}.Begin(ctx, root, []string{"proc", "dev", "sys"})
			require.NoError(t, err)
			defer s.Close()
			require.NotEqual(t, root, s.Dir())
			var out bytes.Buffer
			used, err := Run(ctx, Command{Root: s.Dir(), Args: []string{"helper", "churn"}, Init: self, Stdout: &out, Stderr: &out}, iso)
			require.NoError(t, err, out.String())
			require.Equal(t, iso, used)
			_, err = os.Stat(filepath.Join(root, "etc/new"))
			require.ErrorIs(t, err, fs.ErrNotExist, "the command wrote to the upper directory, not the root")

			var layer bytes.Buffer
			st, err := s.Diff(ctx, &layer, snapshot.Options{})
			require.NoError(t, err)
			require.Equal(t, 1, st.Opaque, "/var/cache was replaced")
			require.Equal(t, int64(len("new")+len("pkg")+len("x")), st.BytesRead, "only the changed files were read")

			_, err = extract.Apply(ctx, replica, &layer, extract.Options{})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			require.Equal(t, describe(t, root), describe(t, replica))
			for _, p := range []string{"proc", "dev", "sys"} {
				require.NoDirExists(t, filepath.Join(root, p), "the sandbox's mount points are gone")
			}
		})
	}
}
