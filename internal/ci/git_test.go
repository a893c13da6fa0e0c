package ci

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitmeta"
)

const (
	sha1st = "8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
	sha2nd = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"
	zeros  = "0000000000000000000000000000000000000000"
)

func eventPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "github-events", name))
	require.NoError(t, err)
	return p
}

func TestGitHubGit(t *testing.T) {
	base := func(event, file string, kv ...string) map[string]string {
		vars := ghEnv("GITHUB_EVENT_NAME", event, "GITHUB_SHA", sha1st, "GITHUB_REPOSITORY", "Octo-Org/App", "GITHUB_SERVER_URL", "https://github.com")
		if file != "" {
			vars["GITHUB_EVENT_PATH"] = eventPath(t, file)
		}
		return with(vars, kv...)
	}
	repo := "https://github.com/Octo-Org/App"
	tests := []struct {
		name string
		vars map[string]string
		want gitmeta.Context
	}{
		{"push", base("push", "push.json", "GITHUB_REF", "refs/heads/main"), gitmeta.Context{
			Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "main", BeforeSHA: "1111111111111111111111111111111111111111", RepositoryURL: repo}},
		{"push tag", base("push", "push-tag.json", "GITHUB_REF", "refs/tags/v1.4.2", "GITHUB_REF_NAME", "v1.4.2", "GITHUB_REF_TYPE", "tag"), gitmeta.Context{
			Event: gitmeta.EventTag, Ref: "refs/tags/v1.4.2", Tag: "v1.4.2", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "main", RepositoryURL: repo}},
		{"pull_request", base("pull_request", "pull_request.json", "GITHUB_REF", "refs/pull/7/merge", "GITHUB_HEAD_REF", "feature/login", "GITHUB_BASE_REF", "main"), gitmeta.Context{
			Event: gitmeta.EventPullRequest, Ref: "refs/pull/7/merge", Branch: "feature/login", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "main", PullRequest: 7, BaseRef: "main", BaseSHA: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", RepositoryURL: repo}},
		{"pull_request without payload", base("pull_request", "", "GITHUB_REF", "refs/pull/9/merge", "GITHUB_HEAD_REF", "fix", "GITHUB_BASE_REF", "main"), gitmeta.Context{
			Event: gitmeta.EventPullRequest, Ref: "refs/pull/9/merge", Branch: "fix", SHA: sha1st, ShortSHALength: 7,
			PullRequest: 9, BaseRef: "main", RepositoryURL: repo}},
		{"pull_request_target uses the head commit", base("pull_request_target", "pull_request_target.json", "GITHUB_REF", "refs/heads/main", "GITHUB_HEAD_REF", "patch-1", "GITHUB_BASE_REF", "main"), gitmeta.Context{
			Event: gitmeta.EventPullRequest, Ref: "refs/heads/main", Branch: "patch-1", SHA: "cccccccccccccccccccccccccccccccccccccccc", ShortSHALength: 7,
			DefaultBranch: "main", PullRequest: 12, BaseRef: "main", BaseSHA: "dddddddddddddddddddddddddddddddddddddddd", RepositoryURL: repo}},
		{"schedule", base("schedule", "schedule.json", "GITHUB_REF", "refs/heads/main"), gitmeta.Context{
			Event: gitmeta.EventSchedule, Ref: "refs/heads/main", Branch: "main", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "main", RepositoryURL: repo}},
		{"workflow_dispatch", base("workflow_dispatch", "workflow_dispatch.json", "GITHUB_REF", "refs/heads/develop"), gitmeta.Context{
			Event: gitmeta.EventManual, Ref: "refs/heads/develop", Branch: "develop", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "main", RepositoryURL: repo}},
		{"release", base("release", "release.json", "GITHUB_REF", "refs/tags/v2.0.0"), gitmeta.Context{
			Event: gitmeta.EventTag, Ref: "refs/tags/v2.0.0", Tag: "v2.0.0", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "main", RepositoryURL: repo}},
		{"other event", base("issue_comment", "issue_comment.json", "GITHUB_REF", "refs/heads/trunk"), gitmeta.Context{
			Event: gitmeta.EventOther, Ref: "refs/heads/trunk", Branch: "trunk", SHA: sha1st, ShortSHALength: 7,
			DefaultBranch: "trunk", RepositoryURL: repo}},
		{"ref name and type only", base("push", "", "GITHUB_REF_NAME", "v3.0.0", "GITHUB_REF_TYPE", "tag"), gitmeta.Context{
			Event: gitmeta.EventTag, Ref: "refs/tags/v3.0.0", Tag: "v3.0.0", SHA: sha1st, ShortSHALength: 7, RepositoryURL: repo}},
		{"enterprise server", base("push", "", "GITHUB_REF", "refs/heads/main", "GITHUB_SERVER_URL", "https://ghe.example.com/"), gitmeta.Context{
			Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", SHA: sha1st, ShortSHALength: 7,
			RepositoryURL: "https://ghe.example.com/Octo-Org/App"}},
		{"missing payload file", base("push", "", "GITHUB_REF", "refs/heads/main", "GITHUB_EVENT_PATH", "/nonexistent/event.json"), gitmeta.Context{
			Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", SHA: sha1st, ShortSHALength: 7, RepositoryURL: repo}},
		{"short-sha-length input", base("push", "", "GITHUB_REF", "refs/heads/main", "INPUT_SHORT-SHA-LENGTH", "12"), gitmeta.Context{
			Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", SHA: sha1st, ShortSHALength: 12, RepositoryURL: repo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustStart(t, testTool(), newHarness(t, tt.vars))
			require.Equal(t, tt.want, j.Git)
		})
	}
}

func TestGitHubBrokenPayload(t *testing.T) {
	h := newHarness(t, ghEnv("GITHUB_EVENT_NAME", "push", "GITHUB_REF", "refs/tags/v1.0.0", "GITHUB_SHA", sha1st,
		"GITHUB_EVENT_PATH", eventPath(t, "broken.json")))
	j := mustStart(t, testTool(), h)
	require.Equal(t, gitmeta.EventTag, j.Git.Event)
	require.Equal(t, "v1.0.0", j.Git.Tag)
	require.Contains(t, h.stdout.String(), "::warning::reading the GitHub event payload")
}

func TestGitLabGit(t *testing.T) {
	base := func(source string, kv ...string) map[string]string {
		return with(glEnv("CI_PIPELINE_SOURCE", source, "CI_COMMIT_SHA", sha1st, "CI_DEFAULT_BRANCH", "main",
			"CI_PROJECT_URL", "https://gitlab.example.com/group/app", "CI_COMMIT_BEFORE_SHA", zeros), kv...)
	}
	repo := "https://gitlab.example.com/group/app"
	ctx := func(c gitmeta.Context) gitmeta.Context {
		c.SHA, c.ShortSHALength, c.DefaultBranch, c.RepositoryURL = sha1st, 8, "main", repo
		return c
	}
	tests := []struct {
		name string
		vars map[string]string
		want gitmeta.Context
	}{
		{"tag", base("push", "CI_COMMIT_TAG", "v1.4.2", "CI_COMMIT_REF_NAME", "v1.4.2"),
			ctx(gitmeta.Context{Event: gitmeta.EventTag, Ref: "refs/tags/v1.4.2", Tag: "v1.4.2"})},
		{"tag run from the web", base("web", "CI_COMMIT_TAG", "v1.4.3"),
			ctx(gitmeta.Context{Event: gitmeta.EventTag, Ref: "refs/tags/v1.4.3", Tag: "v1.4.3"})},
		{"push", base("push", "CI_COMMIT_BRANCH", "main", "CI_COMMIT_REF_NAME", "main", "CI_COMMIT_BEFORE_SHA", sha2nd),
			ctx(gitmeta.Context{Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", BeforeSHA: sha2nd})},
		{"merge request", base("merge_request_event", "CI_MERGE_REQUEST_IID", "42", "CI_COMMIT_REF_NAME", "feat/x",
			"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feat/x", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main", "CI_MERGE_REQUEST_DIFF_BASE_SHA", sha2nd),
			ctx(gitmeta.Context{Event: gitmeta.EventPullRequest, Ref: "refs/merge-requests/42/head", Branch: "feat/x", PullRequest: 42, BaseRef: "main", BaseSHA: sha2nd})},
		{"external pull request", base("external_pull_request_event", "CI_EXTERNAL_PULL_REQUEST_IID", "5",
			"CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME", "gh-fix", "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME", "main"),
			ctx(gitmeta.Context{Event: gitmeta.EventPullRequest, Ref: "refs/heads/gh-fix", Branch: "gh-fix", PullRequest: 5, BaseRef: "main"})},
		{"schedule", base("schedule", "CI_COMMIT_BRANCH", "main"),
			ctx(gitmeta.Context{Event: gitmeta.EventSchedule, Ref: "refs/heads/main", Branch: "main"})},
		{"web", base("web", "CI_COMMIT_BRANCH", "dev"), ctx(gitmeta.Context{Event: gitmeta.EventManual, Ref: "refs/heads/dev", Branch: "dev"})},
		{"api", base("api", "CI_COMMIT_BRANCH", "dev"), ctx(gitmeta.Context{Event: gitmeta.EventManual, Ref: "refs/heads/dev", Branch: "dev"})},
		{"trigger", base("trigger", "CI_COMMIT_REF_NAME", "dev"), ctx(gitmeta.Context{Event: gitmeta.EventManual, Ref: "refs/heads/dev", Branch: "dev"})},
		{"parent pipeline", base("parent_pipeline", "CI_COMMIT_BRANCH", "dev"), ctx(gitmeta.Context{Event: gitmeta.EventOther, Ref: "refs/heads/dev", Branch: "dev"})},
		{"short-sha-length input", base("push", "CI_COMMIT_BRANCH", "main", "INPUT_SHORT_SHA_LENGTH", "10"),
			func() gitmeta.Context {
				c := ctx(gitmeta.Context{Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main"})
				c.ShortSHALength = 10
				return c
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustStart(t, testTool(), newHarness(t, tt.vars))
			require.Equal(t, tt.want, j.Git)
		})
	}
}

// testRepo is a real repository made with go-git.
type testRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	n    int
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	require.NoError(t, err)
	return &testRepo{t: t, dir: dir, repo: repo}
}

func (r *testRepo) commit() plumbing.Hash {
	r.t.Helper()
	r.n++
	require.NoError(r.t, os.WriteFile(filepath.Join(r.dir, "file.txt"), []byte(time.Duration(r.n).String()), 0o644))
	wt, err := r.repo.Worktree()
	require.NoError(r.t, err)
	_, err = wt.Add("file.txt")
	require.NoError(r.t, err)
	h, err := wt.Commit("commit", &git.CommitOptions{Author: sig()})
	require.NoError(r.t, err)
	return h
}

func sig() *object.Signature {
	return &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1700000000, 0)}
}

func (r *testRepo) tag(name string, h plumbing.Hash, annotated bool) {
	r.t.Helper()
	var opts *git.CreateTagOptions
	if annotated {
		opts = &git.CreateTagOptions{Tagger: sig(), Message: "release " + name}
	}
	_, err := r.repo.CreateTag(name, h, opts)
	require.NoError(r.t, err)
}

func (r *testRepo) origin(url string) {
	r.t.Helper()
	_, err := r.repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}})
	require.NoError(r.t, err)
}

func (r *testRepo) checkout(branch string, create bool) {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	require.NoError(r.t, err)
	require.NoError(r.t, wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}))
}

func (r *testRepo) start(t *testing.T, dir string) *Job {
	t.Helper()
	h := newHarness(t, localEnv())
	h.dir = dir
	return mustStart(t, testTool(), h)
}

func TestLocalGit(t *testing.T) {
	t.Run("branch", func(t *testing.T) {
		r := newTestRepo(t)
		first := r.commit()
		r.tag("v0.9.0", first, false) // not at HEAD
		head := r.commit()
		r.origin("git@github.com:Octo-Org/App.git")
		j := r.start(t, r.dir)
		require.Equal(t, gitmeta.Context{
			Event: gitmeta.EventPush, Ref: "refs/heads/main", Branch: "main", SHA: head.String(), ShortSHALength: 7,
			DefaultBranch: "main", RepositoryURL: "https://github.com/Octo-Org/App",
		}, j.Git)
		require.Equal(t, head.String()[:7], j.Git.ShortSHA())
		require.True(t, j.Git.OnDefaultBranch())
	})
	t.Run("feature branch from a subdirectory, origin HEAD", func(t *testing.T) {
		r := newTestRepo(t)
		r.commit()
		r.checkout("feature/x", true)
		head := r.commit()
		r.origin("https://ci-token:SECRET@gitlab.example.com/group/sub/app.git")
		require.NoError(t, r.repo.Storer.SetReference(plumbing.NewSymbolicReference(
			plumbing.NewRemoteHEADReferenceName("origin"), plumbing.NewRemoteReferenceName("origin", "trunk"))))
		sub := filepath.Join(r.dir, "deep", "er")
		require.NoError(t, os.MkdirAll(sub, 0o755))
		j := r.start(t, sub)
		require.Equal(t, gitmeta.Context{
			Event: gitmeta.EventPush, Ref: "refs/heads/feature/x", Branch: "feature/x", SHA: head.String(), ShortSHALength: 7,
			DefaultBranch: "trunk", RepositoryURL: "https://gitlab.example.com/group/sub/app",
		}, j.Git)
	})
	t.Run("tags at HEAD: highest semver wins", func(t *testing.T) {
		r := newTestRepo(t)
		head := r.commit()
		r.tag("v1.2.0", head, true)
		r.tag("v1.10.0", head, false)
		r.tag("zzz-not-semver", head, false)
		r.tag("v1.10.0-rc.1", head, true)
		j := r.start(t, r.dir)
		require.Equal(t, gitmeta.Context{
			Event: gitmeta.EventTag, Ref: "refs/tags/v1.10.0", Tag: "v1.10.0", SHA: head.String(), ShortSHALength: 7,
			DefaultBranch: "main",
		}, j.Git)
	})
	t.Run("tags at HEAD: no semver, lexically last", func(t *testing.T) {
		r := newTestRepo(t)
		head := r.commit()
		r.tag("alpha", head, true)
		r.tag("beta", head, false)
		j := r.start(t, r.dir)
		require.Equal(t, "beta", j.Git.Tag)
		require.Equal(t, gitmeta.EventTag, j.Git.Event)
	})
	t.Run("master as default", func(t *testing.T) {
		r := newTestRepo(t)
		r.commit()
		r.checkout("master", true)
		r.checkout("dev", true)
		require.NoError(t, r.repo.Storer.RemoveReference(plumbing.NewBranchReferenceName("main")))
		j := r.start(t, r.dir)
		require.Equal(t, "master", j.Git.DefaultBranch)
		require.Equal(t, "dev", j.Git.Branch)
	})
	t.Run("empty repository", func(t *testing.T) {
		r := newTestRepo(t)
		j := r.start(t, r.dir)
		require.Equal(t, gitmeta.Context{ShortSHALength: 7}, j.Git)
	})
	t.Run("no repository", func(t *testing.T) {
		h := newHarness(t, localEnv("HOIST_DEBUG", "true"))
		j := mustStart(t, testTool(), h)
		require.Equal(t, gitmeta.Context{ShortSHALength: 7}, j.Git)
		require.Contains(t, h.stderr.String(), "debug: no git repository: the git context is empty")
	})
	t.Run("short-sha-length flag", func(t *testing.T) {
		r := newTestRepo(t)
		head := r.commit()
		h := newHarness(t, localEnv(), "--short-sha-length", "9")
		h.dir = r.dir
		j := mustStart(t, testTool(), h)
		require.Equal(t, head.String()[:9], j.Git.ShortSHA())
	})
}

func TestPickTag(t *testing.T) {
	require.Equal(t, "", pickTag(nil))
	require.Equal(t, "v2.0.0", pickTag([]string{"v2.0.0", "v1.9.9", "v2.0.0-rc.1"}))
	require.Equal(t, "v2.0.0", pickTag([]string{"2.0.0", "v2.0.0"})) // equal versions: lexically last
	require.Equal(t, "v1.0.0", pickTag([]string{"nightly", "v1.0.0"}))
	require.Equal(t, "release-b", pickTag([]string{"release-b", "release-a"}))
}

func TestWebURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"git@github.com:o/r.git", "https://github.com/o/r"},
		{"github.com:o/r", "https://github.com/o/r"},
		{"ssh://git@gitlab.example.com:2222/group/sub/r.git", "https://gitlab.example.com/group/sub/r"},
		{"git+ssh://git@host/o/r", "https://host/o/r"},
		{"git://host/o/r.git", "https://host/o/r"},
		{"https://github.com/o/r.git", "https://github.com/o/r"},
		{"https://user:token@gitlab.com/o/r.git/", "https://gitlab.com/o/r"},
		{"http://127.0.0.1:3000/o/r", "http://127.0.0.1:3000/o/r"},
		{"/srv/git/r.git", ""},
		{"../r", ""},
		{"file:///srv/git/r.git", ""},
		{"", ""},
		{"https://github.com", ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, WebURL(tt.in), tt.in)
	}
}
