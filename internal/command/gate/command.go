// Package gate is the gate command: it reads the job's inputs, runs
// components/gate and returns its outputs. actions/gate and the multi-call
// actions/hoist run it. In short: gate runs lint and test commands, reads
// their reports, enforces thresholds and publishes the results natively. See
// docs/gate.md.
package gate

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"time"

	gatecomponent "github.com/hoist-ci/hoist/components/gate"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Main is gate's main in the process's environment. It returns the exit code.
func Main() int {
	return ci.Exec(spec.Gate(), Run)
}

// console gives the component the job's log groups and lines.
type console struct{ j *ci.Job }

func (c console) Group(title string) func() { return c.j.Group(title) }
func (c console) Print(line string)         { c.j.Log.Info(line) }
func (c console) Output(prefix string) io.WriteCloser {
	return c.j.CommandOutput(prefix)
}

// Run runs gate with the job's inputs and returns the outputs.
func Run(ctx context.Context, j *ci.Job) (map[string]string, error) {
	o := gatecomponent.Options{
		Workspace:   j.Workspace(),
		Run:         j.Lines("run"),
		JUnit:       j.List("junit"),
		GoTestJSON:  j.List("go-test-json"),
		Coverage:    j.List("coverage"),
		Lint:        j.List("lint"),
		Score:       j.String("score"),
		ScoreRun:    j.String("score-run"),
		MaxFindings: j.List("max-findings"),
		Paths:       j.List("paths"),
		Base:        j.String("base"),
		OnNoBase:    j.String("on-no-base"),
		Git:         j.Git,
		Console:     console{j},
	}
	var err error
	if o.ContinueOnFailure, err = j.Bool("continue-on-failure"); err != nil {
		return nil, err
	}
	if o.MaxFailures, err = j.Int("max-failures"); err != nil {
		return nil, err
	}
	if o.MinTests, err = j.Int("min-tests"); err != nil {
		return nil, err
	}
	if o.MinCoverage, err = optionalFloat(j, "min-coverage"); err != nil {
		return nil, err
	}
	if o.MinScore, err = optionalFloat(j, "min-score"); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, &ci.UsageError{Err: err}
	}

	res, runErr := gatecomponent.Run(ctx, o)
	if runErr != nil && !errors.Is(runErr, gatecomponent.ErrFailed) {
		return nil, runErr
	}
	if fix := j.Fix(res.Changes.NoBase); fix != "" {
		j.Log.Info("gate: to compare with a base next time, " + fix)
	}
	publish(j, res)
	files := gatecomponent.ReportFiles{
		JUnit:       j.String("junit-report"),
		CodeQuality: j.String("codequality-report"),
		Cobertura:   j.String("coverage-report"),
	}
	written, werr := res.WriteReports(files, time.Now())
	if werr != nil {
		runErr = errors.Join(runErr, werr)
	}
	// Where the platform has tabs for them (Azure Pipelines), the reports
	// just written are published there.
	var reports ci.Reports
	for _, w := range written {
		switch w {
		case files.JUnit:
			reports.JUnit = w
		case files.Cobertura:
			reports.Cobertura = w
		}
	}
	j.PublishReports(reports)
	return res.Outputs(), runErr
}

// publish reports the result on the platform: annotations where it shows
// them (most severe first, within its limits), the step summary, and the
// terminal report with the coverage line GitLab's coverage: regex reads.
func publish(j *ci.Job, res gatecomponent.Result) {
	notes := res.Notes()
	annotations := make([]ci.Annotation, 0, len(notes))
	for _, n := range notes {
		annotations = append(annotations, ci.Annotation{Level: n.Level, File: n.File, Line: n.Line, EndLine: n.EndLine, Col: n.Col, Title: n.Title, Message: n.Message})
	}
	j.AnnotateAll(annotations)
	if err := j.AddSummary(res.Markdown()); err != nil {
		j.Log.Warn("writing the step summary", "error", err)
	}
	for _, line := range strings.Split(strings.TrimRight(res.Text(), "\n"), "\n") {
		j.Log.Info(line)
	}
}

// optionalFloat is a number input, NaN when unset.
func optionalFloat(j *ci.Job, name string) (float64, error) {
	if !j.Set(name) {
		return math.NaN(), nil
	}
	return j.Float(name)
}
