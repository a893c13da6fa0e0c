package gate

import (
	"fmt"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/reports"
)

// Bounds of the rendered reports: the step summary must stay well under
// GitHub's 1 MiB per step, and a terminal report stays readable.
const (
	maxListed      = 50   // failed tests or findings listed
	maxFailureText = 2048 // bytes of a failure's text in the summary
)

func (r Result) findingsBreakdown() string {
	by := r.Findings.BySeverity()
	var parts []string
	for _, s := range reports.Severities {
		if by[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[s], s))
		}
	}
	n := fmt.Sprint(len(r.Findings.Items))
	if len(parts) > 0 {
		n += " (" + strings.Join(parts, ", ") + ")"
	}
	return n
}

// Markdown renders the step summary: the verdict and its reasons, a totals
// table, the failed tests with their messages, the findings, the commands.
func (r Result) Markdown() string {
	var b strings.Builder
	if r.Skipped {
		fmt.Fprintf(&b, "## ⏭️ gate skipped\n\n%s.\n", mdEscape(r.Changes.Reason))
		return b.String()
	}
	if r.Passed() {
		b.WriteString("## ✅ gate passed\n\n")
	} else {
		b.WriteString("## ❌ gate failed\n\n")
		for _, reason := range r.Reasons {
			fmt.Fprintf(&b, "- %s\n", mdEscape(reason))
		}
		b.WriteString("\n")
	}
	var head, row []string
	if r.TestInputs || r.Counts.Tests > 0 {
		c := r.Counts
		head = append(head, "Tests", "Passed", "Failed", "Skipped", "Time")
		row = append(row, fmt.Sprint(c.Tests), fmt.Sprint(c.Passed), fmt.Sprint(c.Failures()), fmt.Sprint(c.Skipped), (time.Duration(c.Time * float64(time.Second))).Round(time.Millisecond).String())
	}
	if r.HasCoverage {
		head = append(head, "Coverage")
		row = append(row, fmtPct(r.CoveragePct)+"%")
	}
	if len(r.opts.Lint) > 0 {
		head = append(head, "Findings")
		row = append(row, r.findingsBreakdown())
	}
	if r.HasScore {
		head = append(head, "Score")
		row = append(row, fmtNum(r.Score))
	}
	if len(head) > 0 {
		fmt.Fprintf(&b, "| %s |\n|%s\n| %s |\n\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)), strings.Join(row, " | "))
	}
	if failed := r.Tests.FailedCases(); len(failed) > 0 {
		fmt.Fprintf(&b, "### Failed tests (%d)\n\n", len(failed))
		for i, c := range failed {
			if i == maxListed {
				fmt.Fprintf(&b, "… and %d more: see the log or the JUnit report.\n\n", len(failed)-maxListed)
				break
			}
			msg := ""
			if len(c.Failures) > 0 {
				msg = c.Failures[0].Message
			}
			fmt.Fprintf(&b, "<details><summary><code>%s</code> %s</summary>\n\n", htmlEscape(c.ID()), htmlEscape(oneLine(msg, 200)))
			var text strings.Builder
			for _, f := range c.Failures {
				if f.Text != "" {
					text.WriteString(f.Text + "\n")
				} else if f.Message != "" {
					text.WriteString(f.Message + "\n")
				}
			}
			if t := strings.TrimSpace(text.String()); t != "" {
				fmt.Fprintf(&b, "```text\n%s\n```\n", strings.ReplaceAll(cut(t, maxFailureText), "```", "`\u200b``"))
			}
			b.WriteString("</details>\n\n")
		}
	}
	if n := len(r.Findings.Items); n > 0 {
		fmt.Fprintf(&b, "### Findings: %s\n\n| Severity | Location | Rule | Message |\n|---|---|---|---|\n", r.findingsBreakdown())
		for i, f := range r.Findings.Items {
			if i == maxListed {
				fmt.Fprintf(&b, "\n… and %d more: see the log or the code quality report.\n", n-maxListed)
				break
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Severity, mdCell(location(f.File, f.Line)), mdCell(f.Rule), mdCell(oneLine(f.Message, 300)))
		}
		b.WriteString("\n")
	}
	if len(r.Runs) > 0 {
		b.WriteString("### Commands\n\n| Command | Exit code | Time |\n|---|---|---|\n")
		for _, run := range r.Runs {
			exit := fmt.Sprint(run.ExitCode)
			if run.NotRun {
				exit = "not run"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", mdCell(oneLine(run.Name, 100)), exit, run.Duration.Round(time.Millisecond))
		}
	}
	return b.String()
}

// Text renders the terminal report.
func (r Result) Text() string {
	var b strings.Builder
	if r.Skipped {
		fmt.Fprintf(&b, "gate: skipped: %s\n", r.Changes.Reason)
		return b.String()
	}
	if r.TestInputs || r.Counts.Tests > 0 {
		c := r.Counts
		fmt.Fprintf(&b, "Tests: %d (%d passed, %d failed, %d skipped)\n", c.Tests, c.Passed, c.Failures(), c.Skipped)
	}
	if line := r.CoverageLine(); line != "" {
		b.WriteString(line + "\n")
	}
	if len(r.opts.Lint) > 0 {
		fmt.Fprintf(&b, "Findings: %s\n", r.findingsBreakdown())
	}
	if r.HasScore {
		fmt.Fprintf(&b, "Score: %s\n", fmtNum(r.Score))
	}
	if failed := r.Tests.FailedCases(); len(failed) > 0 {
		b.WriteString("\nFailed tests:\n")
		for i, c := range failed {
			if i == maxListed {
				fmt.Fprintf(&b, "  ... and %d more\n", len(failed)-maxListed)
				break
			}
			msg := ""
			if len(c.Failures) > 0 {
				msg = c.Failures[0].Message
				if msg == "" || msg == "Failed" {
					msg = c.Failures[0].Text
				}
			}
			fmt.Fprintf(&b, "  FAIL %s", c.ID())
			if msg = oneLine(msg, 160); msg != "" {
				b.WriteString(": " + msg)
			}
			b.WriteString("\n")
		}
	}
	if len(r.Findings.Items) > 0 {
		b.WriteString("\nFindings:\n")
		for i, f := range r.Findings.Items {
			if i == maxListed {
				fmt.Fprintf(&b, "  ... and %d more\n", len(r.Findings.Items)-maxListed)
				break
			}
			rule := ""
			if f.Rule != "" {
				rule = " [" + f.Rule + "]"
			}
			fmt.Fprintf(&b, "  %s: %s: %s%s\n", location(f.File, f.Line), f.Severity, oneLine(f.Message, 160), rule)
		}
	}
	b.WriteString("\n")
	if r.Passed() {
		b.WriteString("gate: PASSED\n")
	} else {
		b.WriteString("gate: FAILED\n")
		for _, reason := range r.Reasons {
			fmt.Fprintf(&b, "  - %s\n", reason)
		}
	}
	return b.String()
}

func location(file string, line int) string {
	if file == "" {
		return "-"
	}
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

// oneLine is the first line of s, cut to n bytes.
func oneLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " …"
	}
	return cut(s, n)
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func mdEscape(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
