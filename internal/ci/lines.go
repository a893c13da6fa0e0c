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
// the code — GitHub, and Azure Pipelines (errors and warnings, as issues of
// the step) — keeping within its limits: the list is taken in order (put the
// most severe first), and a log line says how many of each level were left
// out. It returns how many were left out. Elsewhere it does nothing and
// returns 0: GitLab shows findings from report artifacts, and a terminal
// shows the tool's own report.
func (j *Job) AnnotateAll(as []Annotation) int {
	perLevel, perJob, where := GitHubAnnotationsPerLevel, GitHubAnnotationsPerJob, "GitHub shows at most %d of each level per step and %d per job"
	switch j.Platform {
	case PlatformGitHub:
	case PlatformAzure:
		perLevel, perJob, where = AzureIssuesPerLevel, 2*AzureIssuesPerLevel, "Azure Pipelines keeps at most %d errors and %d warnings per step"
		var kept []Annotation
		for _, a := range as {
			if a.level() != "notice" { // no notice level: the summary lists them
				kept = append(kept, a)
			}
		}
		as = kept
	default:
		return 0
	}
	count := map[string]int{}
	omitted := map[string]int{}
	shown, left := 0, 0
	for _, a := range as {
		level := a.level()
		if count[level] >= perLevel || shown >= perJob {
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
		limit := fmt.Sprintf(where, perLevel, perJob)
		if j.Platform == PlatformAzure {
			limit = fmt.Sprintf(where, perLevel, perLevel)
		}
		j.Log.Info(fmt.Sprintf("%s not shown as annotations (%s): see the job summary and the log",
			strings.Join(parts, ", "), limit))
	}
	return left
}
