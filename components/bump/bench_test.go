package bump

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

// BenchmarkRunCommit lands one bump across 2,000 manifests (the shape of
// bench/bump) per iteration, each to a new tag: clone, edit, commit, push.
//
//	go test ./components/bump/ -run '^$' -bench RunCommit -cpuprofile cpu.out
func BenchmarkRunCommit(b *testing.B) {
	tree := map[string]string{}
	for i := 0; i < 1000; i++ {
		tree[fmt.Sprintf("apps/app-%04d/kustomization.yaml", i)] = fmt.Sprintf("# app %04d\nkind: Kustomization\nresources:\n  - ../../deploy/deploy-%04d.yaml\nimages:\n  # bumped by CI\n  - name: registry.example.com/team/app\n    newTag: \"1.0.0\" # pinned\n  - name: redis\n    newTag: \"7.2\"\n", i, i)
		tree[fmt.Sprintf("deploy/deploy-%04d.yaml", i)] = fmt.Sprintf("# Deployment %04d\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%04d\n\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/app:1.0.0 # the app\n        - name: sidecar\n          image: registry.example.com/team/sidecar:1.0.0\n", i, i)
	}
	bare := gittest.BareRepo(b, b.TempDir(), "gitops", tree)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := opts(bare)
		o.Images = []string{fmt.Sprintf("registry.example.com/team/app=2.0.%d", i)}
		res, err := Run(context.Background(), o)
		require.NoError(b, err)
		require.Len(b, res.Files, 2000)
	}
}
