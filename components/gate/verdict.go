package gate

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/hoist-ci/hoist/internal/reports"
)

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
