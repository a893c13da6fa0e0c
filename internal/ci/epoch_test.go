package ci

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommitEpoch(t *testing.T) {
	r := newTestRepo(t)
	h := r.commit() // committed at 1700000000
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		dirs     []string
		want     string
		fromPart string
	}{
		{"GitHub: the checkout's HEAD", ghEnv("GITHUB_WORKSPACE", r.dir), nil, "1700000000", h.String()[:12]},
		{"Azure Pipelines: the build context's repository", azEnv(), []string{r.dir}, "1700000000", h.String()[:12]},
		{"GitLab: CI_COMMIT_TIMESTAMP", glEnv("CI_COMMIT_TIMESTAMP", "2024-05-01T10:00:00+02:00", "CI_PROJECT_DIR", r.dir), nil, "1714550400", "CI_COMMIT_TIMESTAMP"},
		{"GitLab without the variable: the repository", glEnv("CI_PROJECT_DIR", r.dir), nil, "1700000000", h.String()[:12]},
		{"no repository: none", ghEnv("GITHUB_WORKSPACE", t.TempDir()), nil, "", ""},
		{"locally: none, builds stay as they were", localEnv(), []string{r.dir}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := mustStart(t, testTool(), newHarness(t, tc.vars))
			got, from := j.CommitEpoch(tc.dirs...)
			require.Equal(t, tc.want, got)
			require.Contains(t, from, tc.fromPart)
		})
	}
}
