package manifests

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReferenced: every kind of reference reports its image, changed or
// already at the new value; an image named nowhere is not reported.
func TestReferenced(t *testing.T) {
	for _, tc := range []struct {
		name, file, src string
	}{
		{"workload at the new tag", "deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: example.com/app:2\n"},
		{"kustomization at the new tag", "kustomization.yaml", "images:\n  - name: example.com/app\n    newTag: \"2\"\n"},
		{"helm values at the new tag", "values.yaml", "image:\n  repository: example.com/app\n  tag: \"2\"\n"},
		{"marker at the new tag", "values.yaml", "tag: \"2\" # hoist:image=example.com/app:tag\n"},
		{"workload to change", "deploy.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: example.com/app:1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			u, err := ParseUpdate("example.com/app=2", PinAuto)
			require.NoError(t, err)
			other, err := ParseUpdate("example.com/other=2", PinAuto)
			require.NoError(t, err)
			_, _, err = Edit(tc.file, []byte(tc.src), Options{Updates: []Update{u, other}, Referenced: func(name string) {
				mu.Lock()
				seen[name]++
				mu.Unlock()
			}})
			require.NoError(t, err)
			require.Positive(t, seen["example.com/app"])
			require.Zero(t, seen["example.com/other"])
		})
	}
}
