package gate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/hoist-ci/hoist/internal/reports"
)

func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	golden.String(t, filepath.Join("testdata", "golden", name), got)
}

// sample runs the gate over the sample project: failures, coverage,
// findings and a score.
func sample(t *testing.T) (Result, string) {
	ws := project(t)
	o := opts(ws)
	o.Run = []string{"lint: echo 'Your code has been rated at 8.25/10'"}
	o.Score, o.MinScore = `rated at ([0-9.]+)/10`, 9
	o.JUnit, o.Lint, o.Coverage = []string{"reports/*.xml"}, []string{"lint.sarif"}, []string{"coverage.out", "lcov.info"}
	o.MinCoverage = 80
	res, err := Run(context.Background(), o)
	require.ErrorIs(t, err, ErrFailed)
	for i := range res.Runs {
		res.Runs[i].Duration = 1500 * time.Millisecond
	}
	return res, ws
}

func TestRenderGolden(t *testing.T) {
	res, ws := sample(t)
	goldenFile(t, "summary.md", strings.ReplaceAll(res.Markdown(), ws, "$WS"))
	goldenFile(t, "report.txt", strings.ReplaceAll(res.Text(), ws, "$WS"))
	require.Equal(t, map[string]string{
		"passed": "false", "skipped": "false", "tests": "9", "failures": "3", "skipped-tests": "2",
		"coverage": "83.33", "findings": "3", "score": "8.25",
	}, res.Outputs())
}

func TestCoverageLineMatchesTheTemplateRegex(t *testing.T) {
	res, _ := sample(t)
	re := regexp.MustCompile(strings.Trim(CoverageRegex, "/"))
	var matched []string
	for _, line := range strings.Split(res.Text(), "\n") {
		if m := re.FindString(line); m != "" {
			matched = append(matched, m)
		}
	}
	require.Equal(t, []string{"Coverage: 83.33%"}, matched, "exactly one line, the canonical one, feeds GitLab's coverage")
	tpl, err := os.ReadFile("../../templates/gate.yml")
	if err == nil {
		require.Contains(t, string(tpl), "coverage: '"+CoverageRegex+"'", "the template's coverage: regex is CoverageRegex")
	}
}

func TestNotesMostSevereFirstWithinLimits(t *testing.T) {
	res, _ := sample(t)
	notes := res.Notes()
	var levels []string
	for _, n := range notes {
		levels = append(levels, n.Level)
	}
	require.Equal(t, []string{"error", "error", "error", "error", "warning", "notice"}, levels)
	require.Equal(t, "Test failed: example.com/shop/cart.TestTotal/with_discount", notes[0].Title)
	require.Equal(t, "golangci-lint errcheck", notes[3].Title)
	require.Equal(t, "cart/cart.go", notes[3].File)
}

func TestSummaryStaysSmall(t *testing.T) {
	var r Result
	r.TestInputs = true
	long := strings.Repeat("x", 100<<10)
	for i := 0; i < 100000; i++ {
		r.Tests.Cases = append(r.Tests.Cases, reports.Case{Name: fmt.Sprint("T", i), Status: reports.Failed,
			Failures: []reports.Failure{{Message: long, Text: long}, {Text: long}}})
		if i < 20000 {
			r.Findings.Items = append(r.Findings.Items, reports.Finding{Severity: reports.SeverityError, File: "a.go", Line: i, Message: long})
		}
	}
	r.Counts = r.Tests.Counts()
	r.opts.Lint = []string{"x"}
	md := r.Markdown()
	require.Less(t, len(md), 300<<10, "the summary stays far below GitHub's 1 MiB")
	require.Contains(t, md, "… and 99950 more")
	require.Less(t, len(r.Text()), 30<<10)
}

func TestWriteReports(t *testing.T) {
	res, ws := sample(t)
	files, err := res.WriteReports(ReportFiles{JUnit: "out/junit.xml", CodeQuality: "out/gl-code-quality-report.json", Cobertura: "out/cobertura.xml"}, time.Unix(1732097643, 0))
	require.NoError(t, err)
	require.Equal(t, []string{"out/junit.xml", "out/gl-code-quality-report.json", "out/cobertura.xml"}, files)

	f, err := os.Open(filepath.Join(ws, "out/junit.xml"))
	require.NoError(t, err)
	defer f.Close()
	back, err := reports.ReadJUnit("junit.xml", f)
	require.NoError(t, err)
	require.Equal(t, res.Counts.Tests, back.Counts().Tests)

	cq, err := os.Open(filepath.Join(ws, "out/gl-code-quality-report.json"))
	require.NoError(t, err)
	defer cq.Close()
	findings, err := reports.ReadCodeQuality("cq", cq)
	require.NoError(t, err)
	require.Len(t, findings.Items, 3)
	require.Equal(t, "cart/cart.go", findings.Items[0].File)

	cov, err := os.Open(filepath.Join(ws, "out/cobertura.xml"))
	require.NoError(t, err)
	defer cov.Close()
	c, err := reports.ReadCoverage("cobertura.xml", cov)
	require.NoError(t, err)
	require.Equal(t, reports.FormatCobertura, c.Formats[0])
	require.Equal(t, "cart/cart.go", c.Files[0].Path, "Go import paths become repository paths")

	// Nothing read, nothing written.
	empty := Result{opts: Options{Workspace: t.TempDir()}}
	files, err = empty.WriteReports(ReportFiles{JUnit: "j.xml", CodeQuality: "c.json", Cobertura: "c.xml"}, time.Now())
	require.NoError(t, err)
	require.Empty(t, files)
}
