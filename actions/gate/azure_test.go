package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig/azureagent"
)

// TestAzurePipelines runs gate as an Azure Pipelines step with the step
// template's report defaults: the merged JUnit report goes to the run's
// Tests tab, the Cobertura report to its Code Coverage tab, failures and
// findings become issues of the step (at most 10 per level), the summary is
// uploaded, the outputs are output variables.
func TestAzurePipelines(t *testing.T) {
	dir := project(t)
	tmp := t.TempDir()
	env := map[string]string{
		"TF_BUILD": "True", "BUILD_SOURCESDIRECTORY": dir, "AGENT_TEMPDIRECTORY": tmp,
		"BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/heads/main", "BUILD_SOURCEVERSION": "1f6e88198c81225d0137b99ad8c72717e31830ed",
		"INPUT_JUNIT": "reports/*.xml", "INPUT_GO_TEST_JSON": "gotest.json", "INPUT_COVERAGE": "coverage.out, lcov.info", "INPUT_LINT": "lint.sarif",
		"INPUT_MIN_COVERAGE": "90",
		// The step template's defaults:
		"INPUT_JUNIT_REPORT": "gate-reports/junit.xml", "INPUT_COVERAGE_REPORT": "gate-reports/coverage.xml",
	}
	code, stdout, stderr := invoke(t, dir, nil, env)
	require.Equal(t, 1, code, stdout)
	require.Empty(t, stderr)
	require.NotContains(t, stdout, "::error")

	o := azureagent.Process(stdout, nil)
	require.Empty(t, o.Failures)
	require.Empty(t, o.Warnings)
	require.Len(t, o.TestResults, 1)
	require.Equal(t, "JUnit", o.TestResults[0].Properties["type"])
	require.Equal(t, filepath.Join(dir, "gate-reports/junit.xml"), o.TestResults[0].Properties["resultfiles"])
	require.FileExists(t, o.TestResults[0].Properties["resultfiles"])
	require.Len(t, o.Coverage, 1)
	require.Equal(t, filepath.Join(dir, "gate-reports/coverage.xml"), o.Coverage[0].Properties["summaryfile"])
	require.FileExists(t, o.Coverage[0].Properties["summaryfile"])

	var errs int
	for _, is := range o.Issues {
		if is.Type == "error" {
			errs++
		}
	}
	require.LessOrEqual(t, errs, 10)
	require.NotEmpty(t, o.Issues)
	require.True(t, strings.HasPrefix(o.Issues[0].Message, "Test failed: "), o.Issues[0].Message)

	require.Equal(t, "false", o.Variables["passed"].Value)
	require.True(t, o.Variables["passed"].Output)
	require.Equal(t, "83.33", o.Variables["coverage"].Value)
	require.Equal(t, "6", o.Variables["failures"].Value)
	require.Contains(t, o.Variables, "skipped-tests")

	require.Len(t, o.Summaries, 1)
	for path, content := range o.Summaries {
		require.Equal(t, tmp, filepath.Dir(path))
		require.Contains(t, content, "gate")
	}
	require.Zero(t, o.Open, "every group is closed")
	require.NoFileExists(t, filepath.Join(dir, "gate.env"), "no GitLab dotenv on Azure")
	_, err := os.Stat(filepath.Join(dir, "gate-reports", "gl-code-quality-report.json"))
	require.True(t, os.IsNotExist(err), "no code quality report unless asked")
}
