package gate

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/outfile"
	"github.com/hoist-ci/hoist/internal/reports"
)

// Outputs returns the result as the tool's declared outputs.
func (r Result) Outputs() map[string]string {
	out := map[string]string{
		"passed":        strconv.FormatBool(r.Passed()),
		"skipped":       strconv.FormatBool(r.Skipped),
		"tests":         strconv.Itoa(r.Counts.Tests),
		"failures":      strconv.Itoa(r.Counts.Failures()),
		"skipped-tests": strconv.Itoa(r.Counts.Skipped),
		"findings":      strconv.Itoa(len(r.Findings.Items)),
		"coverage":      "",
		"score":         "",
	}
	if r.HasCoverage {
		out["coverage"] = fmtPct(r.CoveragePct)
	}
	if r.HasScore {
		out["score"] = fmtNum(r.Score)
	}
	return out
}

// CoverageLine is the canonical coverage line gate prints, which the GitLab
// template's coverage: regex (CoverageRegex) reads.
func (r Result) CoverageLine() string {
	if !r.HasCoverage {
		return ""
	}
	return "Coverage: " + fmtPct(r.CoveragePct) + "%"
}

// CoverageRegex matches CoverageLine (GitLab's job-level coverage: keyword).
const CoverageRegex = `/^Coverage: \d+(?:\.\d+)?%/`

// Note is an annotation: a failure or a finding at a file and line.
type Note struct {
	Level   string // error, warning or notice
	File    string
	Line    int
	EndLine int
	Col     int
	Title   string
	Message string
}

func levelRank(l string) int {
	switch l {
	case "error":
		return 0
	case "warning":
		return 1
	}
	return 2
}

// Notes returns the annotations: test failures (errors), then findings,
// most severe first.
func (r Result) Notes() []Note {
	var notes []Note
	for _, c := range r.Tests.FailedCases() {
		msg := ""
		if len(c.Failures) > 0 {
			f := c.Failures[0]
			msg = strings.TrimSpace(f.Message)
			if msg == "" || msg == "Failed" {
				msg = firstLines(f.Text, 8)
			} else if f.Text != "" {
				msg += "\n" + firstLines(f.Text, 8)
			}
			if len(c.Failures) > 1 {
				msg += fmt.Sprintf("\n(and %d more failures in this test)", len(c.Failures)-1)
			}
		}
		if msg == "" {
			msg = "failed"
		}
		notes = append(notes, Note{Level: "error", File: c.File, Line: c.Line, Title: "Test failed: " + c.ID(), Message: msg})
	}
	for _, f := range r.Findings.Items {
		level := map[reports.Severity]string{reports.SeverityError: "error", reports.SeverityWarning: "warning"}[f.Severity]
		if level == "" {
			level = "notice"
		}
		title := f.Rule
		if f.Tool != "" && f.Tool != "checkstyle" {
			title = strings.TrimSpace(f.Tool + " " + f.Rule)
		}
		notes = append(notes, Note{Level: level, File: f.File, Line: f.Line, EndLine: f.EndLine, Col: f.Col, Title: title, Message: f.Message})
	}
	// Stable: failures before findings of the same level.
	slices.SortStableFunc(notes, func(a, b Note) int { return levelRank(a.Level) - levelRank(b.Level) })
	return notes
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("[... %d more lines]", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

// ReportFiles are the files gate writes for GitLab's artifacts:reports
// (paths relative to the workspace; empty means not written).
type ReportFiles struct {
	JUnit, CodeQuality, Cobertura string
}

// WriteReports writes the merged JUnit report (when tests were read, all
// of them whole: a truncated report would make a merged one that shows
// fewer tests than ran), the code quality report (when lint reports were
// read, even with no finding: GitLab then shows the findings as resolved)
// and the Cobertura report (when coverage was read). Each file appears
// whole or not at all (written aside, then renamed). It returns the files
// written.
func (r Result) WriteReports(f ReportFiles, now time.Time) ([]string, error) {
	var written []string
	write := func(path string, fn func(io.Writer) error) error {
		full := path
		if !filepath.IsAbs(full) {
			full = filepath.Join(r.opts.Workspace, path)
		}
		if err := outfile.WriteWith(full, fn); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, path)
		return nil
	}
	var errs []error
	switch {
	case f.JUnit == "" || !r.TestInputs:
	case len(r.TestsIncomplete) > 0:
		errs = append(errs, fmt.Errorf("junit-report %s not written: %s could not be read whole, and a merged report would show fewer tests than ran",
			f.JUnit, strings.Join(r.TestsIncomplete, ", ")))
	default:
		if err := write(f.JUnit, func(w io.Writer) error { return reports.WriteJUnit(w, r.Tests) }); err != nil {
			return written, err
		}
	}
	if f.CodeQuality != "" && len(r.opts.Lint) > 0 {
		if err := write(f.CodeQuality, func(w io.Writer) error { return reports.WriteCodeQuality(w, r.Findings) }); err != nil {
			return written, err
		}
	}
	if f.Cobertura != "" && len(r.Coverage.Formats) > 0 {
		if err := write(f.Cobertura, func(w io.Writer) error {
			return reports.WriteCobertura(w, r.Coverage, ".", now.Unix())
		}); err != nil {
			return written, err
		}
	}
	return written, errors.Join(errs...)
}
