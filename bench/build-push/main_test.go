package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "RESULTS.md")
	require.NoError(t, os.WriteFile(p, []byte("# Results\n\n## retag\n\nold retag\n\n## build-push\n\nold\n\n## gate\n\ngate\n"), 0o644))
	require.NoError(t, writeSection(p, "## build-push", "## build-push\n\nnew\n"))
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "# Results\n\n## retag\n\nold retag\n\n## build-push\n\nnew\n\n## gate\n\ngate\n", string(data))

	require.NoError(t, os.WriteFile(p, []byte("# Results\n\n## retag\n\nr\n"), 0o644))
	require.NoError(t, writeSection(p, "## build-push", "## build-push\n\nnew\n"))
	data, err = os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "# Results\n\n## retag\n\nr\n\n## build-push\n\nnew\n", string(data))
}
