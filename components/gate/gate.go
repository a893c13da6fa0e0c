// Package gate runs lint and test commands, reads the reports they write
// (JUnit, go test -json, coverage, lint findings, a score from a command's
// output), enforces thresholds and returns a verdict that lists every
// reason it failed. It is skipped when nothing under the watched paths
// changed. Publishing — annotations, summaries, GitLab report files — is
// built from the Result; the platform specifics stay with the caller.
package gate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/reports"
)

// Console is where gate writes what its commands print: the caller's
// collapsible log groups and log lines.
type Console interface {
	// Group opens a log group and returns the function that closes it.
	Group(title string) (end func())
	// Print writes one line of gate's own.
	Print(line string)
	// Output is where a command's output goes, prefixed: the platform
	// layer writes it line by line, masked, unable to issue commands.
	Output(prefix string) io.WriteCloser
}

// Options are gate's inputs (see internal/spec.Gate for their meaning).
type Options struct {
	// Workspace is the directory commands run in and globs are relative to.
	Workspace string
	// Run are shell commands, each "command" or "name: command".
	Run               []string
	ContinueOnFailure bool
	// Report globs, relative to Workspace.
	JUnit, GoTestJSON, Coverage, Lint []string
	// Score is a regular expression with one capture group, applied to the
	// output of the run named ScoreRun (every run's when empty); the last
	// match is the score.
	Score    string
	ScoreRun string

	// MaxFailures < 0 means no limit. MinTests applies when a test report
	// (JUnit or go test -json) is read.
	MaxFailures int
	MinTests    int
	// MinCoverage and MinScore are NaN when not set.
	MinCoverage float64
	MinScore    float64
	// MaxFindings is "N" (total) and/or "severity=N" items (error, warning,
	// note); empty means no limit.
	MaxFindings []string

	// Paths, Base and OnNoBase are the changes filter.
	Paths    []string
	Base     string
	OnNoBase string
	Git      gitmeta.Context

	Console Console
}

// RunResult is one command's outcome.
type RunResult struct {
	Name     string
	Command  string
	ExitCode int
	Duration time.Duration
	// NotRun is true for commands after a failure without continue-on-failure.
	NotRun bool
	output []byte
}

// Result is the gate's verdict and everything it read.
type Result struct {
	// Skipped is true when the changes filter skipped the gate.
	Skipped bool
	Changes Changes
	Runs    []RunResult

	Tests      reports.Tests
	Counts     reports.Counts
	TestInputs bool // a test report was asked for
	// TestsIncomplete are the test reports that could not be read whole
	// (truncated, malformed): their cases up to the fault count, but no
	// merged JUnit report is written from them.
	TestsIncomplete []string

	Coverage    reports.Coverage
	HasCoverage bool
	CoveragePct float64

	Findings reports.Findings

	Score    float64
	HasScore bool

	// Reasons lists every reason the gate failed; empty means it passed.
	Reasons []string
	// Inputs are the report files read, relative to the workspace.
	Inputs []string

	opts Options
}

// Passed reports whether the gate passed (a skipped gate passes).
func (r Result) Passed() bool { return len(r.Reasons) == 0 }

// ErrFailed is returned (wrapped, with the reasons) when the gate fails.
var ErrFailed = errors.New("the gate failed")

// Validate checks options a user sets, naming the input and the fix.
func (o Options) Validate() error {
	if o.Score != "" {
		re, err := regexp.Compile(o.Score)
		if err != nil {
			return fmt.Errorf("score: %q is not a regular expression: %v", o.Score, err)
		}
		if re.NumSubexp() != 1 {
			return fmt.Errorf("score: %q has %d capture groups; it needs exactly one around the number, e.g. 'rated at ([0-9.]+)/10'", o.Score, re.NumSubexp())
		}
	}
	if o.ScoreRun != "" {
		found := false
		for i, cmd := range o.Run {
			if name, _ := splitRun(cmd, i); name == o.ScoreRun {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("score-run: no run is named %q; name one with 'name: command' in run", o.ScoreRun)
		}
	}
	if _, err := parseMaxFindings(o.MaxFindings); err != nil {
		return err
	}
	switch o.OnNoBase {
	case "", OnNoBaseRun, OnNoBaseSkip:
	default:
		return fmt.Errorf("on-no-base: %q is not run or skip", o.OnNoBase)
	}
	if o.MinCoverage < 0 || o.MinCoverage > 100 {
		return fmt.Errorf("min-coverage: %v is not a percentage between 0 and 100", o.MinCoverage)
	}
	return nil
}

// parseMaxFindings reads "10", "error=0", "warning=5" items into limits by
// severity ("" is the total).
func parseMaxFindings(items []string) (map[reports.Severity]int, error) {
	limits := map[reports.Severity]int{}
	for _, it := range items {
		key, val, hasKey := strings.Cut(it, "=")
		if !hasKey {
			key, val = "", it
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("max-findings: %q is not a count; write 10 for the total or error=0,warning=10 per severity", it)
		}
		sev := reports.Severity("")
		if hasKey {
			s, ok := reports.ParseSeverity(key)
			if !ok {
				return nil, fmt.Errorf("max-findings: %q: unknown severity %q (use error, warning or note)", it, key)
			}
			sev = s
		}
		limits[sev] = n
	}
	return limits, nil
}

// Run runs the gate. It returns the Result and, when the gate failed, an
// error wrapping ErrFailed that lists the reasons; other errors are
// failures to run at all.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{opts: o}
	ch, err := checkChanges(ctx, o.Workspace, o.Paths, o.Base, o.OnNoBase, o.Git)
	if err != nil {
		return res, fmt.Errorf("checking what changed: %w", err)
	}
	res.Changes = ch
	if o.Console != nil && len(o.Paths) > 0 {
		what := "running"
		if !ch.Run {
			what = "skipped"
		}
		line := fmt.Sprintf("gate: %s: %s", what, ch.Reason)
		if len(ch.Matched) > 0 {
			line += " (" + strings.Join(ch.Matched, ", ") + ")"
		}
		o.Console.Print(line)
	}
	if !ch.Run {
		res.Skipped = true
		return res, nil
	}

	res.Runs = runCommands(ctx, o)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("running the commands: %w", err)
	}
	for _, r := range res.Runs {
		if r.ExitCode != 0 && !r.NotRun && !o.ContinueOnFailure {
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s exited with %d (set continue-on-failure to let the thresholds decide)", r.Name, r.ExitCode))
		}
	}

	res.readReports(o)
	res.score(o)
	res.verdict(o)
	if !res.Passed() {
		return res, fmt.Errorf("%w: %s", ErrFailed, strings.Join(res.Reasons, "; "))
	}
	return res, nil
}

// expand resolves report globs under the workspace, sorted and deduplicated.
// A pattern matching nothing is a reason to fail: the report a later
// threshold needs was not written.
func (r *Result) expand(input string, patterns []string) []string {
	var files []string
	seen := map[string]bool{}
	for _, p := range patterns {
		pat := filepath.ToSlash(p)
		if filepath.IsAbs(p) {
			if rel, err := filepath.Rel(r.opts.Workspace, p); err == nil && !strings.HasPrefix(rel, "..") {
				pat = filepath.ToSlash(rel)
			}
		}
		var matches []string
		var err error
		if filepath.IsAbs(pat) || strings.HasPrefix(pat, "../") {
			matches, err = doublestar.FilepathGlob(p)
		} else {
			matches, err = doublestar.Glob(os.DirFS(r.opts.Workspace), pat, doublestar.WithFilesOnly())
		}
		if err != nil {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %q is not a valid glob (%v)", input, p, err))
			continue
		}
		if len(matches) == 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: no file matches %q in %s", input, p, r.opts.Workspace))
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
	}
	return files
}

func (r *Result) open(name string) (*os.File, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.opts.Workspace, name)
	}
	return os.Open(path)
}

func (r *Result) read(input string, patterns []string, parse func(name string, f *os.File) error) {
	for _, name := range r.expand(input, patterns) {
		r.Inputs = append(r.Inputs, name)
		f, err := r.open(name)
		if err != nil {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %v", input, err))
			continue
		}
		err = parse(name, f)
		f.Close()
		if err != nil {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %v", input, err))
		}
	}
}

func (r *Result) readReports(o Options) {
	r.TestInputs = len(o.JUnit) > 0 || len(o.GoTestJSON) > 0
	r.read("junit", o.JUnit, func(name string, f *os.File) error {
		t, err := reports.ReadJUnit(name, f)
		r.Tests.Add(t)
		if err != nil {
			r.TestsIncomplete = append(r.TestsIncomplete, name)
		}
		return err
	})
	r.read("go-test-json", o.GoTestJSON, func(name string, f *os.File) error {
		t, err := reports.ReadGoTest(name, f)
		r.Tests.Add(t)
		if err != nil {
			r.TestsIncomplete = append(r.TestsIncomplete, name)
		}
		return err
	})
	r.Counts = r.Tests.Counts()
	// Go profiles are merged block by block (a package measured by several
	// profiles counts once); other formats line by line.
	var goProfiles reports.GoProfiles
	sawGo := false
	r.read("coverage", o.Coverage, func(name string, f *os.File) error {
		br := bufio.NewReader(f)
		head, _ := br.Peek(512)
		if reports.DetectCoverage(head) == reports.FormatGo {
			sawGo = true
			return goProfiles.Read(name, br)
		}
		c, err := reports.ReadCoverage(name, br)
		if err == nil {
			r.Coverage.Add(c)
		}
		return err
	})
	if sawGo {
		r.Coverage.Add(goProfiles.Coverage())
	}
	r.CoveragePct, r.HasCoverage = r.Coverage.Percent()
	r.read("lint", o.Lint, func(name string, f *os.File) error {
		fs, err := reports.ReadLint(name, f)
		r.Findings.Add(fs)
		return err
	})
	r.relativize()
	r.Findings.Sort()
	r.Findings.Fingerprints()
}

// relativize makes report paths relative to the workspace where they are
// absolute paths inside it (checkstyle and SARIF often carry absolute ones;
// GitHub annotations and GitLab reports need repository-relative paths).
func (r *Result) relativize() {
	ws := r.opts.Workspace
	rel := func(p string) string {
		if !filepath.IsAbs(p) || ws == "" {
			return p
		}
		if q, err := filepath.Rel(ws, p); err == nil && !strings.HasPrefix(q, "..") {
			return filepath.ToSlash(q)
		}
		return p
	}
	for i := range r.Findings.Items {
		r.Findings.Items[i].File = rel(r.Findings.Items[i].File)
	}
	for i := range r.Tests.Cases {
		r.Tests.Cases[i].File = rel(r.Tests.Cases[i].File)
	}
	module := goModule(ws)
	for i := range r.Coverage.Files {
		p := rel(r.Coverage.Files[i].Path)
		p = underSource(ws, p, r.Coverage.Sources)
		// Go profiles name files by import path: module/dir/file.go.
		if module != "" && strings.HasPrefix(p, module+"/") {
			p = strings.TrimPrefix(p, module+"/")
		}
		r.Coverage.Files[i].Path = p
	}
	sort.Slice(r.Coverage.Files, func(i, j int) bool { return r.Coverage.Files[i].Path < r.Coverage.Files[j].Path })
}

// underSource resolves a Cobertura file name relative to one of the
// report's <source> directories (coverage.py: source /builds/g/app/src,
// filename app/api.py) into a workspace path (src/app/api.py), when the
// name is not a workspace path already and the joined file exists.
func underSource(ws, p string, sources []string) string {
	if ws == "" || len(sources) == 0 || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(filepath.Join(ws, p)); err == nil {
		return p
	}
	for _, src := range sources {
		if !filepath.IsAbs(src) {
			src = filepath.Join(ws, src)
		}
		cand := filepath.Join(src, p)
		q, err := filepath.Rel(ws, cand)
		if err != nil || strings.HasPrefix(q, "..") {
			continue
		}
		if _, err := os.Stat(cand); err == nil {
			return filepath.ToSlash(q)
		}
	}
	return p
}

// goModule is the module path in the workspace's go.mod, or "".
func goModule(ws string) string {
	data, err := os.ReadFile(filepath.Join(ws, "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

func (r *Result) score(o Options) {
	if o.Score == "" {
		return
	}
	re := regexp.MustCompile(o.Score) // validated
	var last []byte
	for _, run := range r.Runs {
		if o.ScoreRun != "" && run.Name != o.ScoreRun {
			continue
		}
		if ms := re.FindAllSubmatch(run.output, -1); len(ms) > 0 {
			last = ms[len(ms)-1][1]
		}
	}
	where := "the commands' output"
	if o.ScoreRun != "" {
		where = "the output of " + o.ScoreRun
	}
	if last == nil {
		r.Reasons = append(r.Reasons, fmt.Sprintf("score: %q matches nothing in %s", o.Score, where))
		return
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(last)), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		r.Reasons = append(r.Reasons, fmt.Sprintf("score: the captured %q in %s is not a number", string(last), where))
		return
	}
	r.Score, r.HasScore = v, true
}

func (r *Result) verdict(o Options) {
	c := r.Counts
	if o.MaxFailures >= 0 && c.Failures() > o.MaxFailures {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d failed tests, more than max-failures %d", c.Failures(), o.MaxFailures))
	}
	if r.TestInputs && c.Tests < o.MinTests {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d tests ran, fewer than min-tests %d", c.Tests, o.MinTests))
	}
	if !math.IsNaN(o.MinCoverage) {
		switch {
		case len(o.Coverage) == 0:
			r.Reasons = append(r.Reasons, fmt.Sprintf("min-coverage is %s%% but no coverage report is given (set coverage)", fmtPct(o.MinCoverage)))
		case !r.HasCoverage:
			r.Reasons = append(r.Reasons, fmt.Sprintf("min-coverage is %s%% but the coverage reports measure nothing", fmtPct(o.MinCoverage)))
		case roundPct(r.CoveragePct) < o.MinCoverage:
			r.Reasons = append(r.Reasons, fmt.Sprintf("coverage %s%%, below min-coverage %s%%", fmtPct(r.CoveragePct), fmtPct(o.MinCoverage)))
		}
	}
	limits, _ := parseMaxFindings(o.MaxFindings)
	by := r.Findings.BySeverity()
	if n, ok := limits[""]; ok && len(r.Findings.Items) > n {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d findings, more than max-findings %d", len(r.Findings.Items), n))
	}
	for _, sev := range reports.Severities {
		if n, ok := limits[sev]; ok && by[sev] > n {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%d %s findings, more than max-findings %s=%d", by[sev], sev, sev, n))
		}
	}
	if !math.IsNaN(o.MinScore) && r.HasScore && r.Score < o.MinScore {
		r.Reasons = append(r.Reasons, fmt.Sprintf("score %s, below min-score %s", fmtNum(r.Score), fmtNum(o.MinScore)))
	}
	if !math.IsNaN(o.MinScore) && o.Score == "" {
		r.Reasons = append(r.Reasons, "min-score is set but no score regex is given (set score)")
	}
}

// roundPct rounds to the two decimals gate prints, so that the verdict and
// the printed figure agree.
func roundPct(p float64) float64 { return math.Round(p*100) / 100 }

func fmtPct(p float64) string { return strconv.FormatFloat(roundPct(p), 'f', 2, 64) }

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
