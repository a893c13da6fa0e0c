package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/reports"
)

const (
	gateWorkflow = "examples/github/gate.yml"
	gatePipeline = "examples/gitlab/gate.gitlab-ci.yml"
)

// testGate runs gate's example pipelines on two projects, one that passes
// and one that fails (12 failed tests, low coverage, an error finding, a low
// score), under act and gitlab-ci-local.
func testGate(t *testing.T, r *rig) {
	t.Run("github-act", func(t *testing.T) { testGateUnderAct(t, r) })
	t.Run("github-act-skipped", func(t *testing.T) { testGateSkippedUnderAct(t, r) })
	t.Run("gitlab-ci-local", func(t *testing.T) { testGateUnderGitLabCILocal(t, r) })
}

// gateProject copies a sample project (test/e2e/testdata/gate/<name>) and
// extra repository files into a fresh git repository.
func gateProject(t *testing.T, r *rig, name string, files map[string]string, remote string) string {
	t.Helper()
	ws := t.TempDir()
	src := filepath.Join(r.root, "test", "e2e", "testdata", "gate", name)
	require.NoError(t, os.CopyFS(ws, os.DirFS(src)))
	r.copyFiles(t, ws, files)
	r.gitRepo(t, ws, remote)
	return ws
}

func testGateUnderAct(t *testing.T, r *rig) {
	for _, tc := range []struct {
		project string
		pass    bool
	}{{"pass", true}, {"fail", false}} {
		t.Run(tc.project, func(t *testing.T) {
			ws := gateProject(t, r, tc.project, map[string]string{
				"actions/gate/action.yml": "actions/gate/action.yml",
				gateWorkflow:              ".github/workflows/gate.yml",
			}, "https://github.com/acme/app.git")
			ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
			defer cancel()
			start := time.Now()
			out, err := r.act(ctx, t, ws, ".github/workflows/gate.yml")
			t.Logf("act ran the gate workflow on the %s project in %s", tc.project, time.Since(start).Round(time.Millisecond))
			if tc.pass {
				requireRun(t, "act", out, err)
				require.Contains(t, out, "gate passed=true tests=3 failures=0 coverage=75.00 score=8.75")
				require.Contains(t, out, "gate: PASSED")
				require.Regexp(t, `(?m)::notice file=src/app.py,line=4,title=pylint C0116::Missing function or method docstring|notice.*Missing function or method docstring`, out)
				return
			}
			require.Error(t, err, "the failing project's workflow must fail\n%s", tail(out, logTailLines))
			require.Contains(t, out, "gate passed=false tests=14 failures=12 coverage=25.00 score=5")
			for _, reason := range []string{
				"12 failed tests, more than max-failures 0",
				"coverage 25.00%, below min-coverage 70.00%",
				"1 error findings, more than max-findings error=0",
				"score 5, below min-score 7",
			} {
				require.Contains(t, out, reason)
			}
			// Annotations: at most 10 errors, the failures first, and a note.
			errs := regexp.MustCompile(`::error file=tests/test_orders.py,line=\d+,title=Test failed%3A tests\.test_orders\.test_order_\d+`).FindAllString(out, -1)
			require.Len(t, errs, 10, "GitHub shows 10 error annotations per step")
			require.NotContains(t, out, "title=pylint E1101", "the error finding is the 13th error: left out")
			require.Contains(t, out, "3 errors not shown as annotations (GitHub shows at most 10 of each level per step and 50 per job)")
			require.Contains(t, out, "Summary - ## ❌ gate failed", "the step summary")
			require.Contains(t, out, "| 14 | 2 | 12 | 0 |", "the summary's totals")
		})
	}
}

func testGateUnderGitLabCILocal(t *testing.T, r *rig) {
	for _, tc := range []struct {
		project string
		pass    bool
	}{{"pass", true}, {"fail", false}} {
		t.Run(tc.project, func(t *testing.T) {
			files := map[string]string{gatePipeline: ".gitlab-ci.yml"}
			r.withTemplates(t, files)
			ws := gateProject(t, r, tc.project, files, gitlabRemote)
			ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
			defer cancel()
			start := time.Now()
			out, err := r.gitlabCILocal(ctx, t, ws)
			t.Logf("gitlab-ci-local ran the gate pipeline on the %s project in %s", tc.project, time.Since(start).Round(time.Millisecond))
			if tc.pass {
				requireRun(t, "gitlab-ci-local", out, err)
				require.Contains(t, out, "gate passed=true tests=3 failures=0 coverage=75.00 score=8.75")
			} else {
				require.Error(t, err, "the failing project's pipeline must fail\n%s", tail(out, logTailLines))
				require.Contains(t, out, "12 failed tests, more than max-failures 0")
			}
			// The canonical coverage line the job's coverage: regex reads.
			want := map[bool]string{true: "Coverage: 75.00%", false: "Coverage: 25.00%"}[tc.pass]
			require.Regexp(t, `(?m)^gate\s.*`+regexp.QuoteMeta(want)+`|`+regexp.QuoteMeta(want), out)

			// gitlab-ci-local keeps artifacts:paths (gate-reports/) and the dotenv report.
			artifacts := filepath.Join(ws, ".gitlab-ci-local", "artifacts", "gate")
			junit, err := os.Open(filepath.Join(artifacts, "gate-reports", "junit.xml"))
			require.NoError(t, err, "no junit report")
			defer junit.Close()
			tests, err := reports.ReadJUnit("gate-junit.xml", junit)
			require.NoError(t, err)
			require.Equal(t, map[bool]int{true: 3, false: 14}[tc.pass], tests.Counts().Tests)

			cq, err := os.ReadFile(filepath.Join(artifacts, "gate-reports", "gl-code-quality-report.json"))
			require.NoError(t, err, "no code quality report")
			require.Contains(t, string(cq), `"path":"src/app.py"`)
			require.Contains(t, string(cq), `"fingerprint":"`)

			cob, err := os.ReadFile(filepath.Join(artifacts, "gate-reports", "coverage.xml"))
			require.NoError(t, err, "no coverage report")
			require.Contains(t, string(cob), `filename="src/app.py"`)

			dotenv, err := os.ReadFile(filepath.Join(artifacts, ".gitlab-ci-reports", "dotenv", "gate.env"))
			require.NoError(t, err, "no dotenv report")
			require.Contains(t, strings.Split(string(dotenv), "\n"), "GATE_PASSED="+map[bool]string{true: "true", false: "false"}[tc.pass])
		})
	}
}

// testGateSkippedUnderAct pushes a commit that changes only the README of
// the failing project: the paths filter skips the gate, which passes
// without running a command.
func testGateSkippedUnderAct(t *testing.T, r *rig) {
	ws := gateProject(t, r, "fail", map[string]string{
		"actions/gate/action.yml": "actions/gate/action.yml",
		gateWorkflow:              ".github/workflows/gate.yml",
	}, "https://github.com/acme/app.git")
	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	before, err := r.run(ctx, ws, "git", "rev-parse", "HEAD")
	require.NoError(t, err, before)
	require.NoError(t, os.WriteFile(filepath.Join(ws, "README.md"), []byte("docs only\n"), 0o644))
	for _, args := range [][]string{{"add", "README.md"}, {"commit", "-q", "-m", "docs"}} {
		out, err := r.run(ctx, ws, "git", args...)
		require.NoError(t, err, out)
	}
	after, err := r.run(ctx, ws, "git", "rev-parse", "HEAD")
	require.NoError(t, err, after)
	event := filepath.Join(t.TempDir(), "push.json")
	require.NoError(t, os.WriteFile(event, []byte(`{"ref":"refs/heads/main","before":"`+strings.TrimSpace(before)+`","after":"`+strings.TrimSpace(after)+`","repository":{"default_branch":"main","full_name":"acme/app"}}`), 0o644))
	out, err := r.act(ctx, t, ws, ".github/workflows/gate.yml", "-e", event)
	requireRun(t, "act", out, err)
	require.Contains(t, out, "gate: skipped: none of the 1 files changed since "+strings.TrimSpace(before)[:12]+" matches src/**, ci/**")
	require.NotContains(t, out, "run tests: sh ci/test.sh", "a skipped gate runs no command")
	require.Contains(t, out, "set-output:: skipped=true")
	require.Contains(t, out, "gate passed=true tests=0")
}
