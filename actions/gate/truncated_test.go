package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTruncatedJUnitWritesNoPartialReport: a JUnit file cut short (a test
// runner killed mid-write) fails the gate, naming the file, and no merged
// junit-report is written from it — GitLab would show fewer tests than
// ran; the coverage report, read whole, is still written.
func TestTruncatedJUnitWritesNoPartialReport(t *testing.T) {
	dir := project(t)
	full, err := os.ReadFile(filepath.Join(dir, "reports", "pytest.xml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "reports", "pytest.xml"), full[:len(full)*2/3], 0o644))
	code, stdout, stderr := invoke(t, dir, nil, map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_DIR": dir,
		"INPUT_JUNIT": "reports/*.xml", "INPUT_COVERAGE": "coverage.out", "INPUT_CONTINUE_ON_FAILURE": "true",
		"INPUT_JUNIT_REPORT": "gate-reports/junit.xml", "INPUT_COVERAGE_REPORT": "gate-reports/coverage.xml",
	})
	all := stdout + stderr
	require.Equal(t, 1, code, all)
	require.Contains(t, all, "reports/pytest.xml")
	require.Contains(t, all, "the XML ends early (truncated file?)")
	require.Contains(t, all, "junit-report gate-reports/junit.xml not written: reports/pytest.xml could not be read whole")
	_, err = os.Stat(filepath.Join(dir, "gate-reports", "junit.xml"))
	require.ErrorIs(t, err, os.ErrNotExist, "no partial junit-report")
	_, err = os.Stat(filepath.Join(dir, "gate-reports", "coverage.xml"))
	require.NoError(t, err, "the complete reports are written")
	entries, err := os.ReadDir(filepath.Join(dir, "gate-reports"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}
