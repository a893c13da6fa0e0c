package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", path))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func readJUnit(t *testing.T, path string) Tests {
	t.Helper()
	tests, err := ReadJUnit(path, open(t, path))
	require.NoError(t, err)
	return tests
}

func TestReadJUnitFlavours(t *testing.T) {
	for _, tc := range []struct {
		file   string
		counts Counts
		failed map[string][]string // case ID → failure messages
		check  func(t *testing.T, tests Tests)
	}{
		{
			file:   "junit/pytest.xml",
			counts: Counts{Tests: 5, Passed: 2, Failed: 1, Errors: 1, Skipped: 1},
			failed: map[string][]string{
				"tests.test_api.test_create_item": {"AssertionError: assert 500 == 201\n +  where 500 = <Response [500]>.status_code"},
				"tests.test_models.test_db":       {`failed on setup with "sqlite3.OperationalError: unable to open database file"`},
			},
			check: func(t *testing.T, tests Tests) {
				require.Equal(t, "pytest", tests.Cases[0].Suite)
				require.Contains(t, tests.Cases[1].Failures[0].Text, "tests/test_api.py:18: AssertionError")
				require.Equal(t, "needs a database", tests.Cases[2].SkipMessage)
				require.True(t, tests.Cases[4].Failures[0].Error)
			},
		},
		{
			file:   "junit/pytest-xunit1.xml",
			counts: Counts{Tests: 2, Passed: 1, Failed: 1},
			failed: map[string][]string{"tests.test_calc.test_div": {"ZeroDivisionError: division by zero"}},
			check: func(t *testing.T, tests Tests) {
				require.Equal(t, "tests/test_calc.py", tests.Cases[1].File)
				require.Equal(t, 7, tests.Cases[1].Line)
				require.Equal(t, "computing 1/0", tests.Cases[1].Output, "a failed case keeps its output")
			},
		},
		{
			file:   "junit/go-junit-report.xml",
			counts: Counts{Tests: 4, Passed: 2, Failed: 1, Skipped: 1},
			failed: map[string][]string{"example.com/shop/cart.TestTotal/with_discount": {"Failed"}},
			check: func(t *testing.T, tests Tests) {
				require.Equal(t, "cart_test.go:42: total = 90, want 85", tests.Cases[1].Failures[0].Text)
				require.Equal(t, "example.com/shop/price", tests.Cases[3].Suite)
			},
		},
		{
			file:   "junit/gotestsum.xml",
			counts: Counts{Tests: 3, Passed: 2, Failed: 1},
			failed: map[string][]string{"github.com/acme/api/handler.TestPost/bad_json": {"Failed"}},
			check: func(t *testing.T, tests Tests) {
				require.Contains(t, tests.Cases[1].Failures[0].Text, "handler_test.go:31: status = 200, want 400\n--- FAIL")
			},
		},
		{
			file:   "junit/jest-junit.xml",
			counts: Counts{Tests: 3, Passed: 2, Failed: 1},
			failed: map[string][]string{"Button calls onClick": {""}},
			check: func(t *testing.T, tests Tests) {
				require.Equal(t, "src/components/Button.test.tsx", tests.Cases[1].File)
				require.Contains(t, tests.Cases[1].Failures[0].Text, "Received number of calls: 0")
			},
		},
		{
			file:   "junit/TEST-com.acme.OrderServiceTest.xml",
			counts: Counts{Tests: 5, Passed: 2, Failed: 1, Errors: 1, Skipped: 1},
			failed: map[string][]string{
				"com.acme.OrderServiceTest.rejectsEmptyCart": {"expected: <400> but was: <200>", "expected: <400> but was: <200>"},
				"com.acme.OrderServiceTest.connectsToDb":     {"Connection refused"},
			},
			check: func(t *testing.T, tests Tests) {
				require.InDelta(t, 0.051, tests.Cases[0].Time, 1e-9)
				require.Equal(t, "POST /orders -> 200", tests.Cases[1].Output)
				require.Equal(t, Passed, tests.Cases[3].Status, "a flakyFailure passed on a re-run")
				require.Equal(t, "@Disabled until #412", tests.Cases[4].SkipMessage)
			},
		},
		{
			file:   "junit/nested.xml",
			counts: Counts{Tests: 3, Passed: 2, Failed: 1},
			failed: map[string][]string{"db.soft asserts": {"row count 3, want 4", "column name missing"}},
			check: func(t *testing.T, tests Tests) {
				require.Equal(t, "integration.db", tests.Cases[0].Suite)
				require.Equal(t, "integration", tests.Cases[2].Suite, "the suite is the innermost one still open")
				require.Equal(t, "second", tests.Cases[1].Failures[1].Text)
			},
		},
		{
			file:   "junit/latin1.xml",
			counts: Counts{Tests: 1, Passed: 1},
			check: func(t *testing.T, tests Tests) {
				require.Equal(t, "café", tests.Cases[0].Name)
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			tests := readJUnit(t, tc.file)
			got := tests.Counts()
			got.Time = 0
			require.Equal(t, tc.counts, got)
			failed := map[string][]string{}
			for _, c := range tests.FailedCases() {
				require.Equal(t, tc.file, c.Report)
				for _, f := range c.Failures {
					failed[c.ID()] = append(failed[c.ID()], f.Message)
				}
			}
			if tc.failed == nil {
				tc.failed = map[string][]string{}
			}
			require.Equal(t, tc.failed, failed)
			if tc.check != nil {
				tc.check(t, tests)
			}
		})
	}
}

func TestMalformedNamesFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		file string
		read func(string, *os.File) error
		want string
	}{
		{"malformed/mismatched.xml", func(n string, f *os.File) error { _, err := ReadJUnit(n, f); return err }, "malformed/mismatched.xml:5: malformed XML: element <failure> closed by </failur>"},
		{"malformed/truncated.xml", func(n string, f *os.File) error { _, err := ReadJUnit(n, f); return err }, "malformed/truncated.xml:5: the XML ends early"},
		{"malformed/html.xml", func(n string, f *os.File) error { _, err := ReadJUnit(n, f); return err }, "malformed/html.xml:2: not a JUnit XML report: the root element is <html>"},
		{"malformed/bad-type.sarif", func(n string, f *os.File) error { _, err := ReadLint(n, f); return err }, "malformed/bad-type.sarif:4: malformed SARIF"},
		{"malformed/syntax.json", func(n string, f *os.File) error { _, err := ReadLint(n, f); return err }, "malformed/syntax.json:4: malformed code quality issue"},
		{"malformed/cover.out", func(n string, f *os.File) error { _, err := ReadCoverage(n, f); return err }, "malformed/cover.out:3: malformed coverprofile line"},
		{"malformed/gotest.json", func(n string, f *os.File) error { _, err := ReadGoTest(n, f); return err }, "malformed/gotest.json:2: not a go test -json event"},
		{"junit/pytest.xml", func(n string, f *os.File) error { _, err := ReadCoverage(n, f); return err }, "junit/pytest.xml:1: unknown XML coverage report: the root element is <testsuites>"},
		{"coverage/lcov.info", func(n string, f *os.File) error { _, err := ReadLint(n, f); return err }, "coverage/lcov.info:1: unknown lint report format"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			err := tc.read(tc.file, open(t, tc.file))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
		})
	}
}

func TestReadGoTest(t *testing.T) {
	tests, err := ReadGoTest("shop.json", open(t, "gotest/shop.json"))
	require.NoError(t, err)
	c := tests.Counts()
	require.Equal(t, 6, c.Tests)
	require.Equal(t, 1, c.Skipped)
	byName := map[string]Case{}
	for _, tc := range tests.Cases {
		byName[tc.ID()] = tc
	}
	require.Equal(t, Failed, byName["example.com/shop/cart.TestTotal/with_discount"].Status)
	require.Contains(t, byName["example.com/shop/cart.TestTotal/with_discount"].Failures[0].Text, "total = 90, want 85")
	require.Equal(t, Failed, byName["example.com/shop/cart.TestTotal"].Status)
	require.Equal(t, Passed, byName["example.com/shop/cart.TestTotal/plain"].Status)
	require.Equal(t, "cart_test.go:18: slow test", byName["example.com/shop/cart.TestSlow"].SkipMessage)
	broken := byName["example.com/shop/broken"]
	require.Equal(t, Failed, broken.Status, "a build failure is a failed case")
	require.Equal(t, "the build failed", broken.Failures[0].Message)
	require.Contains(t, broken.Failures[0].Text, `cannot use "no"`)
	require.Equal(t, 3, c.Failures())
}

func TestReadGoTestPanicAndCutStream(t *testing.T) {
	in := strings.Join([]string{
		`# example.com/x`, // merged stderr: ignored
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"panic: boom\n"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.01s\n"}`,
		`{"Action":"fail","Package":"p","Elapsed":0.01}`,
		`{"Action":"run","Package":"q","Test":"TestB"}`,
	}, "\n")
	tests, err := ReadGoTest("x.json", strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, tests.Cases, 2)
	require.Equal(t, "TestA", tests.Cases[0].Name)
	require.Equal(t, Failed, tests.Cases[0].Status)
	require.Contains(t, tests.Cases[0].Failures[0].Text, "panic: boom")
	require.Equal(t, "TestB", tests.Cases[1].Name)
	require.Contains(t, tests.Cases[1].Failures[0].Text, "the stream ended before this test finished")

	_, err = ReadGoTest("plain.txt", strings.NewReader("ok  \tp\t0.1s\n"))
	require.ErrorContains(t, err, "plain.txt: not a go test -json stream")
}

func TestReadCoverage(t *testing.T) {
	for _, tc := range []struct {
		file    string
		format  string
		percent float64
		files   []string
		lines   map[string][]LineHits
	}{
		{file: "coverage/coverage.out", format: FormatGo, percent: 100, files: []string{"example.com/shop/cart/cart.go", "example.com/shop/price/price.go"}},
		{file: "coverage/coverage.xml", format: FormatCobertura, percent: 70, files: []string{"app/__init__.py", "app/api.py"},
			lines: map[string][]LineHits{"app/api.py": {{1, 1}, {2, 1}, {5, 3}, {6, 3}, {10, 1}, {11, 0}, {12, 0}, {14, 0}}}},
		{file: "coverage/lcov.info", format: FormatLCOV, percent: 62.5, files: []string{"src/components/Button.tsx", "src/format.ts"},
			lines: map[string][]LineHits{"src/format.ts": {{1, 4}, {2, 4}, {3, 0}, {5, 4}}}},
		{file: "coverage/jacoco.xml", format: FormatJaCoCo, percent: 75, files: []string{"com/acme/OrderService.java"},
			lines: map[string][]LineHits{"com/acme/OrderService.java": {{8, 3}, {12, 5}, {13, 0}, {20, 7}}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cov, err := ReadCoverage(tc.file, open(t, tc.file))
			require.NoError(t, err)
			require.Equal(t, []string{tc.format}, cov.Formats)
			pct, ok := cov.Percent()
			require.True(t, ok)
			require.InDelta(t, tc.percent, pct, 1e-9)
			var files []string
			for _, f := range cov.Files {
				files = append(files, f.Path)
				if want, ok := tc.lines[f.Path]; ok {
					require.Equal(t, want, f.Lines)
				}
			}
			require.Equal(t, tc.files, files)
			if tc.format == FormatCobertura {
				require.Equal(t, []string{"/builds/acme/app/src"}, cov.Sources)
			}
		})
	}
}

func TestGoCoverProfileSemantics(t *testing.T) {
	// Two test binaries instrumenting the same package (-coverpkg): a block
	// counts once, with its highest count; percent is by statements.
	in := "mode: count\n" +
		"m/a.go:1.1,2.2 3 0\n" +
		"m/a.go:4.1,4.9 1 0\n" +
		"mode: count\n" +
		"m/a.go:1.1,2.2 3 5\n" +
		"m/a.go:4.1,4.9 1 0\n"
	cov, err := ReadCoverage("c.out", strings.NewReader(in))
	require.NoError(t, err)
	require.EqualValues(t, 4, cov.Statements)
	require.EqualValues(t, 3, cov.CoveredStatements)
	pct, _ := cov.Percent()
	require.InDelta(t, 75, pct, 1e-9)
	require.Equal(t, []LineHits{{1, 5}, {2, 5}, {4, 0}}, cov.Files[0].Lines)

	var merged Coverage
	merged.Add(cov)
	lc, err := ReadCoverage("l.info", strings.NewReader("SF:m/a.go\nDA:4,2\nend_of_record\n"))
	require.NoError(t, err)
	merged.Add(lc)
	pct, _ = merged.Percent()
	require.InDelta(t, 100, pct, 1e-9, "mixed formats fall back to lines, hits summed")
}

func TestReadLint(t *testing.T) {
	type row struct {
		Tool, Rule string
		Sev        Severity
		File       string
		Line, Col  int
	}
	for _, tc := range []struct {
		file string
		want []row
		fp   []string
	}{
		{file: "lint/golangci.sarif", want: []row{
			{"golangci-lint", "errcheck", SeverityError, "cart/cart.go", 24, 9},
			{"golangci-lint", "unused", SeverityNote, "/builds/acme/shop/price/price.go", 7, 6},
			{"golangci-lint", "gosec", SeverityWarning, "main dir/main.go", 3, 0},
		}, fp: []string{"", "", "39fa2ee980eb94b0:1"}},
		{file: "lint/eslint-checkstyle.xml", want: []row{
			{"checkstyle", "eslint.rules.no-unused-vars", SeverityError, "/app/src/components/Button.tsx", 12, 7},
			{"checkstyle", "eslint.rules.no-console", SeverityWarning, "/app/src/components/Button.tsx", 30, 1},
			{"checkstyle", "", SeverityNote, "/app/src/index.ts", 1, 1},
		}},
		{file: "lint/gl-code-quality-report.json", want: []row{
			{"", "pylint:C0114", SeverityWarning, "src/app/api.py", 1, 0},
			{"", "pylint:E1101", SeverityError, "src/app/api.py", 33, 12},
			{"", "too-many-statements", SeverityNote, "src/app/jobs.py", 80, 0},
		}, fp: []string{"7815696ecbf1c96e6894b779456d330e", "a7c2c9f5d0f2b2ec1f2b5e6a0c1d9e4b", "c3f2"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := ReadLint(tc.file, open(t, tc.file))
			require.NoError(t, err)
			var got []row
			var fps []string
			for _, x := range f.Items {
				got = append(got, row{x.Tool, x.Rule, x.Severity, x.File, x.Line, x.Col})
				fps = append(fps, x.Fingerprint)
				require.NotEmpty(t, x.Message)
			}
			require.Equal(t, tc.want, got)
			if tc.fp != nil {
				require.Equal(t, tc.fp, fps)
			}
		})
	}
}

func TestFingerprintsStable(t *testing.T) {
	mk := func(line int) Findings {
		return Findings{Items: []Finding{
			{Tool: "pylint", Rule: "C0114", File: "a.py", Line: line, Message: "Missing module docstring"},
			{Tool: "pylint", Rule: "C0114", File: "a.py", Line: line + 5, Message: "Missing module docstring"},
		}}
	}
	a, b := mk(1), mk(40)
	a.Fingerprints()
	b.Fingerprints()
	require.Equal(t, a.Items[0].Fingerprint, b.Items[0].Fingerprint, "moving code does not change fingerprints")
	require.NotEqual(t, a.Items[0].Fingerprint, a.Items[1].Fingerprint, "identical findings stay distinct")
	require.Len(t, a.Items[0].Fingerprint, 32)
}

func TestFindingsSort(t *testing.T) {
	f := Findings{Items: []Finding{{Severity: SeverityNote, File: "a"}, {Severity: SeverityError, File: "b"}, {Severity: SeverityWarning, File: "a"}, {Severity: SeverityError, File: "a"}}}
	f.Sort()
	var got []string
	for _, x := range f.Items {
		got = append(got, string(x.Severity)+":"+x.File)
	}
	require.Equal(t, []string{"error:a", "error:b", "warning:a", "note:a"}, got)
}

// goldenFile compares got with testdata/golden/name: go test
// ./internal/reports -update rewrites it.
func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.File(t, filepath.Join("testdata", "golden", name), got)
}

func TestWritersGoldenAndRoundTrip(t *testing.T) {
	var all Tests
	for _, f := range []string{"junit/pytest.xml", "junit/TEST-com.acme.OrderServiceTest.xml", "junit/nested.xml"} {
		all.Add(readJUnit(t, f))
	}
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, all))
	goldenFile(t, "merged-junit.xml", buf.Bytes())
	back, err := ReadJUnit("merged", bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, all.Counts().Tests, back.Counts().Tests)
	a, b := all.Counts(), back.Counts()
	a.Time, b.Time = 0, 0
	require.Equal(t, a, b)
	for i := range all.Cases {
		require.Equal(t, all.Cases[i].Failures, back.Cases[i].Failures)
	}

	cov, err := ReadCoverage("coverage.xml", open(t, "coverage/coverage.xml"))
	require.NoError(t, err)
	jc, err := ReadCoverage("jacoco.xml", open(t, "coverage/jacoco.xml"))
	require.NoError(t, err)
	cov.Add(jc)
	buf.Reset()
	require.NoError(t, WriteCobertura(&buf, cov, ".", 1732097643))
	goldenFile(t, "cobertura.xml", buf.Bytes())
	back2, err := ReadCoverage("cobertura", bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, cov.Files, back2.Files)

	fs, err := ReadLint("sarif", open(t, "lint/golangci.sarif"))
	require.NoError(t, err)
	fs.Sort()
	buf.Reset()
	require.NoError(t, WriteCodeQuality(&buf, fs))
	goldenFile(t, "gl-code-quality.json", buf.Bytes())
	back3, err := ReadCodeQuality("cq", bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Len(t, back3.Items, len(fs.Items))
	for i := range fs.Items {
		require.Equal(t, fs.Items[i].Fingerprint, back3.Items[i].Fingerprint)
		require.Equal(t, fs.Items[i].Severity, back3.Items[i].Severity)
	}
}
