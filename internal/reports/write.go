package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// WriteJUnit writes the cases as one JUnit XML report, a <testsuite> per
// suite, in the shape GitLab's unit test report reads.
func WriteJUnit(w io.Writer, t Tests) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	c := t.Counts()
	fmt.Fprintf(bw, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%s\">\n",
		c.Tests, c.Failed, c.Errors, c.Skipped, seconds(c.Time))
	names, bySuite := t.suites()
	for _, s := range names {
		var sc Tests
		for _, i := range bySuite[s] {
			sc.Cases = append(sc.Cases, t.Cases[i])
		}
		n := sc.Counts()
		fmt.Fprintf(bw, "  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%s\">\n",
			esc(s), n.Tests, n.Failed, n.Errors, n.Skipped, seconds(n.Time))
		for _, tc := range sc.Cases {
			fmt.Fprintf(bw, "    <testcase name=\"%s\" classname=\"%s\" time=\"%s\"", esc(tc.Name), esc(tc.Classname), seconds(tc.Time))
			if tc.File != "" {
				fmt.Fprintf(bw, " file=\"%s\"", esc(tc.File))
			}
			if tc.Line > 0 {
				fmt.Fprintf(bw, " line=\"%d\"", tc.Line)
			}
			if tc.Status == Passed {
				bw.WriteString("/>\n")
				continue
			}
			bw.WriteString(">\n")
			if tc.Status == Skipped {
				fmt.Fprintf(bw, "      <skipped message=\"%s\"/>\n", esc(tc.SkipMessage))
			}
			for _, f := range tc.Failures {
				el := "failure"
				if f.Error {
					el = "error"
				}
				fmt.Fprintf(bw, "      <%s message=\"%s\" type=\"%s\">%s</%s>\n", el, esc(f.Message), esc(f.Type), esc(f.Text), el)
			}
			if tc.Output != "" {
				fmt.Fprintf(bw, "      <system-out>%s</system-out>\n", esc(tc.Output))
			}
			bw.WriteString("    </testcase>\n")
		}
		bw.WriteString("  </testsuite>\n")
	}
	bw.WriteString("</testsuites>\n")
	return bw.Flush()
}

// WriteCobertura writes the coverage as a Cobertura XML report (the format
// GitLab's coverage_report artifact reads), a package per directory.
// timestamp is Unix seconds.
func WriteCobertura(w io.Writer, c Coverage, sourceRoot string, timestamp int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	valid, covered := c.LineCounts()
	fmt.Fprintf(bw, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n")
	fmt.Fprintf(bw, "<coverage line-rate=\"%s\" branch-rate=\"0\" lines-covered=\"%d\" lines-valid=\"%d\" branches-covered=\"0\" branches-valid=\"0\" complexity=\"0\" version=\"hoist\" timestamp=\"%d\">\n",
		rate(covered, valid), covered, valid, timestamp)
	fmt.Fprintf(bw, "  <sources>\n    <source>%s</source>\n  </sources>\n  <packages>\n", esc(sourceRoot))
	var pkgs []string
	byPkg := map[string][]FileCoverage{}
	for _, f := range c.Files {
		dir := path.Dir(strings.ReplaceAll(f.Path, "\\", "/"))
		if _, ok := byPkg[dir]; !ok {
			pkgs = append(pkgs, dir)
		}
		byPkg[dir] = append(byPkg[dir], f)
	}
	for _, p := range pkgs {
		pv, pc := Coverage{Files: byPkg[p]}.LineCounts()
		fmt.Fprintf(bw, "    <package name=\"%s\" line-rate=\"%s\" branch-rate=\"0\" complexity=\"0\">\n      <classes>\n", esc(p), rate(pc, pv))
		for _, f := range byPkg[p] {
			fv, fc := Coverage{Files: []FileCoverage{f}}.LineCounts()
			fmt.Fprintf(bw, "        <class name=\"%s\" filename=\"%s\" line-rate=\"%s\" branch-rate=\"0\" complexity=\"0\">\n          <methods/>\n          <lines>\n",
				esc(path.Base(f.Path)), esc(f.Path), rate(fc, fv))
			for _, l := range f.Lines {
				fmt.Fprintf(bw, "            <line number=\"%d\" hits=\"%d\"/>\n", l.Line, l.Hits)
			}
			bw.WriteString("          </lines>\n        </class>\n")
		}
		bw.WriteString("      </classes>\n    </package>\n")
	}
	bw.WriteString("  </packages>\n</coverage>\n")
	return bw.Flush()
}

// codeQualitySeverity maps a severity onto Code Climate's scale.
func codeQualitySeverity(s Severity) string {
	switch s {
	case SeverityError:
		return "major"
	case SeverityWarning:
		return "minor"
	}
	return "info"
}

// WriteCodeQuality writes the findings as a GitLab code quality report: a
// JSON array of Code Climate issues with description, check_name,
// fingerprint, severity and location (path, lines.begin). Findings without
// a fingerprint get one (see Findings.Fingerprints).
func WriteCodeQuality(w io.Writer, f Findings) error {
	f.Fingerprints()
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("[")
	for i, x := range f.Items {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  ")
		line := x.Line
		if line < 1 {
			line = 1
		}
		check := x.Rule
		if x.Tool != "" && check != "" {
			check = x.Tool + ":" + check
		} else if check == "" {
			check = x.Tool
		}
		is := map[string]any{
			"type":        "issue",
			"description": x.Message,
			"check_name":  check,
			"fingerprint": x.Fingerprint,
			"severity":    codeQualitySeverity(x.Severity),
			"location":    map[string]any{"path": x.File, "lines": map[string]int{"begin": line}},
		}
		if x.Tool != "" {
			is["engine_name"] = x.Tool
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(is); err != nil {
			return fmt.Errorf("encoding a code quality issue: %w", err)
		}
		bw.Write(bytes.TrimRight(b.Bytes(), "\n"))
	}
	bw.WriteString("\n]\n")
	return bw.Flush()
}

func esc(s string) string {
	var b strings.Builder
	// xml.EscapeText also drops characters XML 1.0 cannot carry.
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func seconds(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

func rate(covered, valid int64) string {
	if valid == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(covered)/float64(valid), 'f', 4, 64)
}
