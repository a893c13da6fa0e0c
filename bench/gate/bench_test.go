package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/reports"
)

func TestGeneratedInputsReadBack(t *testing.T) {
	dir := t.TempDir()
	junit := filepath.Join(dir, "j.xml")
	failures, err := writeJUnit(junit, 1000)
	require.NoError(t, err)
	f, err := os.Open(junit)
	require.NoError(t, err)
	defer f.Close()
	tests, err := reports.ReadJUnit("j.xml", f)
	require.NoError(t, err)
	c := tests.Counts()
	require.Equal(t, 1000, c.Tests)
	require.Equal(t, failures, c.Failures())
	require.Equal(t, 10, failures)

	prof := filepath.Join(dir, "c.out")
	stmts, covered, err := writeCoverProfile(prof, 100<<10)
	require.NoError(t, err)
	p, err := os.Open(prof)
	require.NoError(t, err)
	defer p.Close()
	cov, err := reports.ReadCoverage("c.out", p)
	require.NoError(t, err)
	require.Equal(t, stmts, cov.Statements)
	require.Equal(t, covered, cov.CoveredStatements)
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	require.NoError(t, os.WriteFile(path, []byte("# R\n\n## retag\n\nold retag\n\n## gate\n\nold gate\n\n## zz\n\nz\n"), 0o644))
	require.NoError(t, writeSection(path, "gate", "## gate\n\nnew\n"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# R\n\n## retag\n\nold retag\n\n## gate\n\nnew\n\n## zz\n\nz\n", string(b))
	require.NoError(t, writeSection(path, "bump", "## bump\n\nb\n"))
	b, _ = os.ReadFile(path)
	require.Contains(t, string(b), "## zz\n\nz\n\n## bump\n\nb\n")
}
