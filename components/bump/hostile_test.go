package bump

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

// The probe: two image keys in one container. bump used to edit the
// first and exit 0 while kubectl (last key wins) kept deploying the old
// image. It now refuses the file, naming it and the line, and lands nothing.
func TestDuplicateImageKeysAreRefused(t *testing.T) {
	tree := map[string]string{
		"deploy/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/team/app:1.4.1
          image: registry.example.com/team/app:1.0.0
`,
	}
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", tree)
	before := gittest.Log(t, bare, "main")
	for _, mode := range []string{ModeCommit, ModeDryRun} {
		o := opts(bare)
		o.Mode = mode
		res, err := Run(context.Background(), o)
		require.ErrorContains(t, err, `deploy/app.yaml:11: duplicate mapping key "image" (first at line 10)`, mode)
		require.False(t, res.Changed)
		require.Empty(t, res.Commit)
	}
	require.Equal(t, before, gittest.Log(t, bare, "main"), "nothing landed")
}
