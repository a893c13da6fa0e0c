package reports

import "sort"

// Status is a test case's outcome.
type Status string

// Statuses. Error is JUnit's <error> (the test could not run or crashed);
// it counts as a failure.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Errored Status = "error"
	Skipped Status = "skipped"
)

// Failure is one <failure> or <error> of a test case. A case can have
// several (a Surefire re-run, a test that records soft assertion failures).
type Failure struct {
	// Error is true for JUnit's <error>, false for <failure>.
	Error   bool
	Type    string
	Message string
	Text    string
}

// Case is one test case.
type Case struct {
	// Suite is the innermost test suite's name; Classname and Name are
	// JUnit's attributes (go test: the package and the test).
	Suite     string
	Classname string
	Name      string
	// File and Line locate the test when the report says where it is
	// (pytest's file/line, jest-junit's file).
	File     string
	Line     int
	Time     float64 // seconds
	Status   Status
	Failures []Failure
	// SkipMessage is why a skipped case was skipped.
	SkipMessage string
	// Output is the captured output of a failed case (system-out/err, go
	// test output), clipped.
	Output string
	// Report is the file the case was read from.
	Report string
}

// Failed reports whether the case failed or errored.
func (c Case) Failed() bool { return c.Status == Failed || c.Status == Errored }

// ID is the case's display name: classname.name, or name alone.
func (c Case) ID() string {
	if c.Classname == "" || c.Classname == c.Name {
		return c.Name
	}
	return c.Classname + "." + c.Name
}

// Tests is the test cases read from one or more reports.
type Tests struct {
	Cases []Case
}

// Add appends another report's cases.
func (t *Tests) Add(o Tests) { t.Cases = append(t.Cases, o.Cases...) }

// Counts are the totals of a set of cases.
type Counts struct {
	Tests, Passed, Failed, Errors, Skipped int
	Time                                   float64
}

// Failures is failed plus errored cases.
func (c Counts) Failures() int { return c.Failed + c.Errors }

// Counts totals the cases.
func (t Tests) Counts() Counts {
	var c Counts
	for _, tc := range t.Cases {
		c.Tests++
		c.Time += tc.Time
		switch tc.Status {
		case Failed:
			c.Failed++
		case Errored:
			c.Errors++
		case Skipped:
			c.Skipped++
		default:
			c.Passed++
		}
	}
	return c
}

// FailedCases returns the failed and errored cases in report order.
func (t Tests) FailedCases() []Case {
	var out []Case
	for _, c := range t.Cases {
		if c.Failed() {
			out = append(out, c)
		}
	}
	return out
}

// suites groups case indexes by suite name, in first-seen order.
func (t Tests) suites() (names []string, bySuite map[string][]int) {
	bySuite = map[string][]int{}
	for i, c := range t.Cases {
		if _, ok := bySuite[c.Suite]; !ok {
			names = append(names, c.Suite)
		}
		bySuite[c.Suite] = append(bySuite[c.Suite], i)
	}
	return names, bySuite
}

var _ = sort.Strings
