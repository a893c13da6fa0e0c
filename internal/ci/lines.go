package ci

import "strings"

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

// AnnotationLimits returns how many annotations of each level and in all
// the platform shows for one step; 0 means no limit (GitLab and local runs
// print annotations as log lines).
func (j *Job) AnnotationLimits() (perLevel, total int) {
	if j.Platform == PlatformGitHub {
		return GitHubAnnotationsPerLevel, GitHubAnnotationsPerJob
	}
	return 0, 0
}
