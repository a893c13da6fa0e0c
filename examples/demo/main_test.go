package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemo keeps `make demo` working: the whole example pipeline with the
// real binaries, built fresh.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every tool; skipped in -short mode")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", bin+"/", "./actions/...")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	t.Chdir(root)
	var log bytes.Buffer
	err = run(context.Background(), bin, &log)
	require.NoError(t, err, "%s", log.String())
	require.Contains(t, log.String(), "demo OK")
}
