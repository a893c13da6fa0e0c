package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/components/gate"
	"github.com/hoist-ci/hoist/internal/ci"
	gatecommand "github.com/hoist-ci/hoist/internal/command/gate"
	"github.com/hoist-ci/hoist/internal/reports"
	"github.com/hoist-ci/hoist/internal/spec"
)

// project copies the component's sample project: JUnit reports with 3
// failures, a Go coverprofile (100%), an LCOV file, a SARIF log.
func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../components/gate/testdata/project")))
	return dir
}

func invoke(t *testing.T, dir string, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = ci.Main(context.Background(), spec.Gate(), ci.Env{
		Args: args, Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errb, Dir: dir,
	}, gatecommand.Run)
	return code, out.String(), errb.String()
}

func TestCLIExample(t *testing.T) {
	dir := project(t)
	// The example, verbatim.
	code, stdout, stderr := invoke(t, dir, []string{"--junit", "reports/*.xml", "--coverage", "coverage.out", "--min-coverage", "80", "--max-failures", "0"}, nil)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "Tests: 9 (4 passed, 3 failed, 2 skipped)\nCoverage: 100.00%\n")
	require.Contains(t, stderr, "FAIL tests.test_api.test_create_item: AssertionError: assert 500 == 201")
	require.Contains(t, stderr, "gate: FAILED\n  - 3 failed tests, more than max-failures 0\n")
	require.Contains(t, stdout, "passed=false\n")
	require.NotContains(t, stderr, "::", "no platform commands locally")

	code, _, stderr = invoke(t, dir, []string{"--junit", "reports/go.xml", "--coverage", "coverage.out", "--min-coverage", "80", "--max-failures", "1"}, nil)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "gate: PASSED")
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--score", "rated at [0-9.]+"}, "error: score: \"rated at [0-9.]+\" has 0 capture groups"},
		{[]string{"--on-no-base", "maybe"}, "on-no-base"},
		{[]string{"--min-coverage", "lots"}, "min-coverage"},
		{[]string{"--max-findings", "warning=many"}, "max-findings: \"warning=many\" is not a count"},
		{[]string{"--score-run", "lint", "--run", "test: true"}, "score-run: no run is named \"lint\""},
	} {
		code, _, stderr := invoke(t, t.TempDir(), tc.args, nil)
		require.NotZero(t, code)
		require.Contains(t, stderr, tc.want)
		require.NotContains(t, stderr, "Tests:", "nothing ran")
	}
}

func TestGitHub(t *testing.T) {
	dir := project(t)
	// 30 error findings: more than GitHub shows.
	var sarif strings.Builder
	sarif.WriteString(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"lint"}},"results":[`)
	for i := 0; i < 30; i++ {
		if i > 0 {
			sarif.WriteString(",")
		}
		sarif.WriteString(`{"ruleId":"R1","level":"error","message":{"text":"bad"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"` + dir + `/src/a.py"},"region":{"startLine":` + string(rune('1'+i%9)) + `}}}]}`)
	}
	sarif.WriteString(`,{"ruleId":"W1","level":"warning","message":{"text":"meh"}}]}]}`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "many.sarif"), []byte(sarif.String()), 0o644))
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": dir,
		"GITHUB_OUTPUT": filepath.Join(dir, "out"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary.md"),
		"INPUT_RUN":   "lint: echo 'Your code has been rated at 9.10/10'\necho a,b",
		"INPUT_JUNIT": "reports/*.xml", "INPUT_LINT": "many.sarif", "INPUT_COVERAGE": "lcov.info",
		"INPUT_SCORE": "rated at ([0-9.]+)/10", "INPUT_MIN-SCORE": "9", "INPUT_MAX-FAILURES": "-1",
		"INPUT_MIN-TESTS": "1", "INPUT_BASE": "auto", "INPUT_ON-NO-BASE": "run",
	}
	code, stdout, _ := invoke(t, dir, nil, env)
	require.Equal(t, 0, code, stdout)

	errorsShown := regexp.MustCompile(`(?m)^::error `).FindAllString(stdout, -1)
	warningsShown := regexp.MustCompile(`(?m)^::warning`).FindAllString(stdout, -1)
	require.Len(t, errorsShown, 10, "at most 10 error annotations per step")
	require.Len(t, warningsShown, 1)
	first := strings.Index(stdout, "::error ")
	require.Contains(t, stdout[first:first+200], "title=Test failed%3A example.com/shop/cart.TestTotal/with_discount", "failures first")
	require.Contains(t, stdout, "::error file=src/a.py,line=1,title=lint R1::bad", "paths relative to the workspace")
	require.Contains(t, stdout, "23 errors not shown as annotations (GitHub shows at most 10 of each level per step and 50 per job)")
	require.Contains(t, stdout, "::group::run lint: echo 'Your code has been rated at 9.10/10'")
	require.Contains(t, stdout, "::group::run: echo a,b\na,b\n", "commas stay in commands")

	summary, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	require.NoError(t, err)
	require.Contains(t, string(summary), "## ✅ gate passed")
	require.Contains(t, string(summary), "| 9 | 4 | 3 | 2 |")
	require.Contains(t, string(summary), "### Failed tests (3)")
	outputs, err := os.ReadFile(env["GITHUB_OUTPUT"])
	require.NoError(t, err)
	for k, v := range map[string]string{"passed": "true", "tests": "9", "failures": "3", "skipped": "false", "skipped-tests": "2", "coverage": "62.50", "findings": "31", "score": "9.1"} {
		require.Regexp(t, "(?m)^"+k+"<<.*\n"+regexp.QuoteMeta(v)+"\n", string(outputs), k)
	}
	for _, f := range []string{"gate-reports"} {
		require.NoFileExists(t, filepath.Join(dir, f), "GitHub writes no GitLab report unless asked")
	}
}

func TestGitLab(t *testing.T) {
	dir := project(t)
	env := map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_DIR": dir,
		"INPUT_JUNIT": "reports/*.xml", "INPUT_GO_TEST_JSON": "gotest.json", "INPUT_COVERAGE": "coverage.out, lcov.info", "INPUT_LINT": "lint.sarif",
		"INPUT_MIN_COVERAGE": "90",
		// The component's defaults:
		"INPUT_JUNIT_REPORT": "gate-reports/junit.xml", "INPUT_CODEQUALITY_REPORT": "gate-reports/gl-code-quality-report.json", "INPUT_COVERAGE_REPORT": "gate-reports/coverage.xml",
	}
	code, stdout, _ := invoke(t, dir, nil, env)
	require.Equal(t, 1, code)
	require.NotContains(t, stdout, "::error")

	tpl, err := os.ReadFile("../../templates/gate.yml")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^  coverage: '/(.*)/'$`).FindSubmatch(tpl)
	require.NotNil(t, m, "the template declares coverage:")
	cov := regexp.MustCompile("(?m)"+string(m[1])).FindAllString(stdout, -1)
	require.Equal(t, []string{"Coverage: 83.33%"}, cov, "GitLab's coverage regex reads the canonical line once")
	require.Contains(t, stdout, "coverage 83.33%, below min-coverage 90.00%")

	for _, want := range []string{"artifacts:", "junit: $[[ inputs.junit-report ]]", "codequality: $[[ inputs.codequality-report ]]", "coverage_format: cobertura", "path: $[[ inputs.coverage-report ]]", "dotenv: gate.env", "when: always"} {
		require.Contains(t, string(tpl), want)
	}

	f, err := os.Open(filepath.Join(dir, "gate-reports/junit.xml"))
	require.NoError(t, err)
	defer f.Close()
	tests, err := reports.ReadJUnit("gate-junit.xml", f)
	require.NoError(t, err)
	require.Equal(t, 15, tests.Counts().Tests, "JUnit and go test -json merged")

	cq, err := os.ReadFile(filepath.Join(dir, "gate-reports/gl-code-quality-report.json"))
	require.NoError(t, err)
	require.Contains(t, string(cq), `"fingerprint":"b139a83efb92a6e5db4bf04a4cf07f8c"`, "stable fingerprints")

	cob, err := os.ReadFile(filepath.Join(dir, "gate-reports/coverage.xml"))
	require.NoError(t, err)
	require.Contains(t, string(cob), `filename="cart/cart.go"`)
	require.Contains(t, string(cob), `filename="src/format.ts"`)

	dotenv, err := os.ReadFile(filepath.Join(dir, "gate.env"))
	require.NoError(t, err)
	require.Contains(t, string(dotenv), "GATE_PASSED=false\n")
	require.Contains(t, string(dotenv), "GATE_COVERAGE=83.33\n")
	require.Contains(t, string(dotenv), "GATE_FAILURES=6\n")
	_ = gate.CoverageRegex
}
