package ci

import (
	"fmt"
	"strings"
)

// Lines returns a spec.Lines input: one item per line, trimmed, blank lines
// dropped, commas kept (shell commands contain them). Repeated flags
// append.
func (j *Job) Lines(name string) []string {
	_, v := j.input(name)
	var out []string
	for _, s := range v.values {
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

// GitHub's limits on annotations made with workflow commands: per step at
// most 10 of each level (error, warning, notice) are shown, and 50 in all
// per job (actions/toolkit docs/problem-matchers.md, "Limitations").
const (
	GitHubAnnotationsPerLevel = 10
	GitHubAnnotationsPerJob   = 50
)

// AnnotateAll publishes annotations where the platform shows them next to
// the code — GitHub — keeping within its limits: the list is taken in order
// (put the most severe first), and a log line says how many of each level
// were left out. It returns how many were left out. Elsewhere it does
// nothing and returns 0: GitLab shows findings from report artifacts, and a
// terminal shows the tool's own report.
func (j *Job) AnnotateAll(as []Annotation) int {
	if j.Platform != PlatformGitHub {
		return 0
	}
	count := map[string]int{}
	omitted := map[string]int{}
	shown, left := 0, 0
	for _, a := range as {
		level := a.level()
		if count[level] >= GitHubAnnotationsPerLevel || shown >= GitHubAnnotationsPerJob {
			omitted[level]++
			left++
			continue
		}
		count[level]++
		shown++
		j.Annotate(a)
	}
	if left > 0 {
		var parts []string
		for _, l := range []string{"error", "warning", "notice"} {
			if n := omitted[l]; n > 0 {
				noun := l
				if n > 1 {
					noun += "s"
				}
				parts = append(parts, fmt.Sprintf("%d %s", n, noun))
			}
		}
		j.Log.Info(fmt.Sprintf("%s not shown as annotations (GitHub shows at most %d of each level per step and %d per job): see the job summary and the log",
			strings.Join(parts, ", "), GitHubAnnotationsPerLevel, GitHubAnnotationsPerJob))
	}
	return left
}
