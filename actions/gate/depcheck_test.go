package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeps keeps gate's binary small: it must not link the registry client
// nor go-containerregistry (after go-containerregistry's
// cmd/crane/depcheck_test.go).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/hoist-ci/hoist/internal/registry", "github.com/google/go-containerregistry"} {
			require.False(t, strings.HasPrefix(dep, banned), "actions/gate depends on %s; keep registry code out of gate", dep)
		}
	}
}
