// Package gitmeta turns a pipeline's git context into image tags and OCI
// labels, with the semantics of docker/metadata-action where they overlap.
package gitmeta

// Event is what started the pipeline, named the same on every platform.
type Event string

// Events.
const (
	EventPush        Event = "push"
	EventTag         Event = "tag"
	EventPullRequest Event = "pull_request" // a GitHub pull request or a GitLab merge request
	EventSchedule    Event = "schedule"
	EventManual      Event = "manual" // workflow_dispatch, GitLab "web"/"api"/"trigger"
	EventOther       Event = "other"
)

// Context is the git context of a pipeline run. internal/ci fills it from
// GitHub's environment and event payload, GitLab's CI_* variables, or the
// local repository.
type Context struct {
	Event Event
	// Ref is the full ref: refs/heads/main, refs/tags/v1.4.2, refs/pull/7/merge.
	Ref    string
	Branch string // the branch name, for a push; the source branch of a PR/MR
	Tag    string // the tag name on a tag pipeline
	SHA    string // full commit SHA
	// ShortSHALength is how many characters ShortSHA keeps (GitLab 8, GitHub 7).
	ShortSHALength int
	DefaultBranch  string
	// PullRequest is the PR/MR number, 0 when the run is not for one.
	PullRequest int
	// BaseRef is the branch a PR/MR targets; BaseSHA its commit when known.
	BaseRef string
	BaseSHA string
	// BeforeSHA is the commit a push moved the branch from, when known.
	BeforeSHA string
	// RepositoryURL is the web URL of the repository (https://github.com/o/r).
	RepositoryURL string
}

// ShortSHA returns the SHA shortened to ShortSHALength (7 when unset).
func (c Context) ShortSHA() string {
	n := c.ShortSHALength
	if n <= 0 {
		n = 7
	}
	if len(c.SHA) <= n {
		return c.SHA
	}
	return c.SHA[:n]
}

// OnDefaultBranch reports whether this is a push to the default branch.
func (c Context) OnDefaultBranch() bool {
	return c.Event == EventPush && c.Branch != "" && c.Branch == c.DefaultBranch
}
