package ci

import (
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
)

// CommitEpoch is the default of SOURCE_DATE_EPOCH in CI: the time of the
// commit being built, in Unix seconds, so that a rerun of the same commit
// gives the same image digest. On GitLab it is CI_COMMIT_TIMESTAMP; on
// GitHub and Azure Pipelines (and on GitLab without that variable) the
// committer time of HEAD in the first of dirs that is in a git repository
// (git log -1 --format=%ct). Locally, or when no commit time is found, it
// returns "". from says where the value came from, for the log.
func (j *Job) CommitEpoch(dirs ...string) (epoch, from string) {
	if j.Platform == PlatformLocal {
		return "", ""
	}
	if j.Platform == PlatformGitLab {
		if ts := strings.TrimSpace(j.env.Getenv("CI_COMMIT_TIMESTAMP")); ts != "" {
			if t, err := time.Parse(time.RFC3339, ts); err == nil && t.Unix() >= 0 {
				return strconv.FormatInt(t.Unix(), 10), "CI_COMMIT_TIMESTAMP"
			}
			j.Log.Debug("CI_COMMIT_TIMESTAMP is not an RFC 3339 time", "value", ts)
		}
	}
	for _, dir := range append(dirs, j.Workspace()) {
		if dir == "" {
			continue
		}
		repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
		if err != nil {
			continue
		}
		head, err := repo.Head()
		if err != nil {
			continue
		}
		c, err := repo.CommitObject(head.Hash())
		if err != nil || c.Committer.When.Unix() < 0 {
			continue
		}
		return strconv.FormatInt(c.Committer.When.Unix(), 10), "the committer time of " + head.Hash().String()[:12]
	}
	return "", ""
}
