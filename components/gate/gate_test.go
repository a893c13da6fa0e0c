package gate

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeConsole records groups and lines.
type fakeConsole struct {
	mu    sync.Mutex
	lines []string
}

func (c *fakeConsole) Group(title string) func() {
	c.add("::group:: " + title)
	return func() { c.add("::endgroup::") }
}
func (c *fakeConsole) Print(line string) { c.add(line) }

// Output records whole lines, as the platform layer's writer passes them.
func (c *fakeConsole) Output(prefix string) io.WriteCloser {
	return &fakeLines{c: c, prefix: prefix}
}

type fakeLines struct {
	c       *fakeConsole
	prefix  string
	partial string
}

func (l *fakeLines) Write(p []byte) (int, error) {
	l.partial += string(p)
	for {
		i := strings.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.c.add(l.prefix + l.partial[:i])
		l.partial = l.partial[i+1:]
	}
}

func (l *fakeLines) Close() error {
	if l.partial != "" {
		l.c.add(l.prefix + l.partial)
	}
	return nil
}
func (c *fakeConsole) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, s)
}

func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("testdata/project")))
	return dir
}

func opts(ws string) Options {
	return Options{Workspace: ws, MaxFailures: 0, MinTests: 1, MinCoverage: math.NaN(), MinScore: math.NaN(), OnNoBase: OnNoBaseRun}
}

func TestRunCommands(t *testing.T) {
	ws := t.TempDir()
	con := &fakeConsole{}
	o := opts(ws)
	o.Console = con
	o.Run = []string{"first: echo hello; echo err >&2", "echo unnamed > out.txt", "broken: exit 3", "never: echo never"}
	res, err := Run(context.Background(), o)
	require.ErrorIs(t, err, ErrFailed)
	require.Len(t, res.Runs, 4)
	require.Equal(t, "first", res.Runs[0].Name)
	require.Equal(t, "echo hello; echo err >&2", res.Runs[0].Command)
	require.Equal(t, "echo unnamed > out.txt", res.Runs[1].Name)
	require.Equal(t, 3, res.Runs[2].ExitCode)
	require.True(t, res.Runs[3].NotRun, "without continue-on-failure the commands after a failure do not run")
	require.FileExists(t, filepath.Join(ws, "out.txt"), "commands run in the workspace")
	require.Equal(t, []string{"broken exited with 3 (set continue-on-failure to let the thresholds decide)"}, res.Reasons)
	require.Equal(t, []string{
		"::group:: run first: echo hello; echo err >&2", "hello", "err", "gate: first exited with 0 after " + res.Runs[0].Duration.Round(1e6).String(), "::endgroup::",
	}, con.lines[:5], "output is streamed inside a group per command")
	require.NotContains(t, strings.Join(con.lines, "\n"), "never")

	o.ContinueOnFailure = true
	con.lines = nil
	res, err = Run(context.Background(), o)
	require.NoError(t, err, "with continue-on-failure exit codes are recorded, thresholds decide")
	require.False(t, res.Runs[3].NotRun)
	require.Equal(t, 0, res.Runs[3].ExitCode)
	require.Equal(t, "false", res.Outputs()["skipped"])
	require.Equal(t, "true", res.Outputs()["passed"])
}

func TestScore(t *testing.T) {
	pylint := `printf '************* Module app\nsrc/app.py:1:0: C0114: Missing module docstring (missing-module-docstring)\n\n------------------------------------------------------------------\nYour code has been rated at 6.50/10 (previous run: 7.00/10, -0.50)\n'`
	for _, tc := range []struct {
		name     string
		run      []string
		scoreRun string
		minScore float64
		score    float64
		reasons  []string
	}{
		{name: "below", run: []string{"lint: " + pylint}, scoreRun: "lint", minScore: 7, score: 6.5, reasons: []string{"score 6.5, below min-score 7"}},
		{name: "above", run: []string{"lint: " + pylint}, minScore: 6.5, score: 6.5},
		{name: "named run only", run: []string{"other: echo rated at 9.9/10", "lint: " + pylint}, scoreRun: "other", minScore: 9, score: 9.9},
		{name: "no match", run: []string{"lint: echo nothing"}, scoreRun: "lint", minScore: 1, reasons: []string{`score: "rated at ([0-9.]+)/10" matches nothing in the output of lint`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t.TempDir())
			o.Run, o.Score, o.ScoreRun, o.MinScore = tc.run, `rated at ([0-9.]+)/10`, tc.scoreRun, tc.minScore
			res, _ := Run(context.Background(), o)
			require.Equal(t, tc.reasons, res.Reasons)
			if tc.reasons == nil {
				require.True(t, res.HasScore)
			}
			require.Equal(t, tc.score, res.Score)
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*Options)
		want string
	}{
		{func(o *Options) { o.Score = "rated at [0-9.]+" }, "needs exactly one"},
		{func(o *Options) { o.Score = "(" }, "is not a regular expression"},
		{func(o *Options) { o.Run = []string{"lint: x"}; o.ScoreRun = "pylint" }, `score-run: no run is named "pylint"`},
		{func(o *Options) { o.MaxFindings = []string{"fatal=x"} }, "max-findings"},
		{func(o *Options) { o.MaxFindings = []string{"bogus=1"} }, "unknown severity"},
		{func(o *Options) { o.OnNoBase = "maybe" }, "on-no-base"},
		{func(o *Options) { o.MinCoverage = 120 }, "min-coverage"},
		{func(o *Options) { o.Paths = []string{"src/[a"} }, "not a valid glob"},
	} {
		o := opts(t.TempDir())
		tc.mut(&o)
		_, err := Run(context.Background(), o)
		require.ErrorContains(t, err, tc.want)
		require.False(t, errors.Is(err, ErrFailed))
	}
}

func TestThresholds(t *testing.T) {
	ws := project(t)
	for _, tc := range []struct {
		name    string
		mut     func(*Options)
		reasons []string
		check   func(t *testing.T, r Result)
	}{
		{
			name: "CLI example: junit glob, coverage, thresholds",
			mut: func(o *Options) {
				o.JUnit, o.Coverage, o.MinCoverage, o.MaxFailures = []string{"reports/*.xml"}, []string{"coverage.out"}, 80, 0
			},
			reasons: []string{"3 failed tests, more than max-failures 0"},
			check: func(t *testing.T, r Result) {
				require.Equal(t, 9, r.Counts.Tests)
				require.Equal(t, []string{"reports/go.xml", "reports/pytest.xml", "coverage.out"}, r.Inputs)
				require.Equal(t, "100.00", r.Outputs()["coverage"])
				require.Equal(t, "cart/cart.go", r.Coverage.Files[0].Path, "the module path is stripped from Go profiles")
			},
		},
		{
			name: "every reason is listed",
			mut: func(o *Options) {
				o.JUnit, o.GoTestJSON, o.Lint = []string{"reports/pytest.xml", "missing/*.xml"}, []string{"gotest.json"}, []string{"lint.sarif"}
				o.Coverage, o.MinCoverage = []string{"lcov.info"}, 80
				o.MaxFailures, o.MinTests = 1, 50
				o.MaxFindings = []string{"2", "error=0", "note=5"}
			},
			reasons: []string{
				`junit: no file matches "missing/*.xml" in ` + ws,
				"5 failed tests, more than max-failures 1",
				"11 tests ran, fewer than min-tests 50",
				"coverage 62.50%, below min-coverage 80.00%",
				"3 findings, more than max-findings 2",
				"1 error findings, more than max-findings error=0",
			},
		},
		{
			name:    "no limit on failures; min-tests holds",
			mut:     func(o *Options) { o.JUnit, o.MaxFailures = []string{"reports/*.xml"}, -1 },
			reasons: nil,
		},
		{
			name:    "a gate that ran no test fails",
			mut:     func(o *Options) { o.Run = []string{"true"}; o.JUnit = []string{"reports/none-*.xml"} },
			reasons: []string{`junit: no file matches "reports/none-*.xml" in ` + ws, "0 tests ran, fewer than min-tests 1"},
		},
		{
			name:    "min-coverage without coverage",
			mut:     func(o *Options) { o.MinCoverage = 50 },
			reasons: []string{"min-coverage is 50.00% but no coverage report is given (set coverage)"},
		},
		{
			name: "malformed report names file and line",
			mut: func(o *Options) {
				o.Run = []string{"printf '<testsuite>\\n<testcase>\\n</testsuite>\\n' > bad.xml"}
				o.JUnit = []string{"bad.xml"}
			},
			reasons: []string{"junit: bad.xml:3: malformed XML: element <testcase> closed by </testsuite>", "0 tests ran, fewer than min-tests 1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(ws)
			tc.mut(&o)
			res, err := Run(context.Background(), o)
			require.Equal(t, tc.reasons, res.Reasons)
			if tc.reasons == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrFailed)
				for _, r := range tc.reasons {
					require.Contains(t, err.Error(), r)
				}
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func TestCoberturaPathsUnderSource(t *testing.T) {
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "src", "app"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "src", "app", "api.py"), []byte("x = 1\n"), 0o644))
	// coverage.py measured <ws>/src: file names are relative to it.
	xml := `<?xml version="1.0" ?><coverage><sources><source>` + filepath.Join(ws, "src") + `</source></sources><packages><package name="app"><classes>` +
		`<class name="api.py" filename="app/api.py"><lines><line number="1" hits="1"/></lines></class>` +
		`<class name="gone.py" filename="app/gone.py"><lines><line number="1" hits="0"/></lines></class>` +
		`</classes></package></packages></coverage>`
	require.NoError(t, os.WriteFile(filepath.Join(ws, "coverage.xml"), []byte(xml), 0o644))
	o := opts(ws)
	o.Coverage = []string{"coverage.xml"}
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, "app/gone.py", res.Coverage.Files[0].Path, "a file that is nowhere keeps its name")
	require.Equal(t, "src/app/api.py", res.Coverage.Files[1].Path)
}

func TestGoProfilesMergedAcrossFiles(t *testing.T) {
	ws := t.TempDir()
	// Two test binaries measured the same package (-coverpkg): each covered
	// a different block. Summing would report 4 statements; there are 2.
	require.NoError(t, os.WriteFile(filepath.Join(ws, "a.out"), []byte("mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:3.1,4.2 1 0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "b.out"), []byte("mode: set\nm/a.go:1.1,2.2 1 0\nm/a.go:3.1,4.2 1 1\n"), 0o644))
	o := opts(ws)
	o.Coverage, o.MinCoverage = []string{"*.out"}, 100
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.Coverage.Statements)
	require.Equal(t, "100.00", res.Outputs()["coverage"])
}
