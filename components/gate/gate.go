// Package gate runs lint and test commands, reads the reports they write
// (JUnit, go test -json, coverage, lint findings, a score from a command's
// output), enforces thresholds and returns a verdict that lists every
// reason it failed. It is skipped when nothing under the watched paths
// changed. Publishing — annotations, summaries, GitLab report files — is
// built from the Result; the platform specifics stay with the caller.
package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

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
