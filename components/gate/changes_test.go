package gate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitmeta"
)

type gitRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	wt   *git.Worktree
	n    int
}

func newRepo(t *testing.T) *gitRepo {
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	require.NoError(t, err)
	wt, err := repo.Worktree()
	require.NoError(t, err)
	return &gitRepo{t: t, dir: dir, repo: repo, wt: wt}
}

func (g *gitRepo) commit(files ...string) string {
	g.t.Helper()
	g.n++
	for _, f := range files {
		p := filepath.Join(g.dir, f)
		require.NoError(g.t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(g.t, os.WriteFile(p, []byte(f+" v"+time.Now().String()+string(rune('a'+g.n))), 0o644))
		_, err := g.wt.Add(f)
		require.NoError(g.t, err)
	}
	h, err := g.wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(int64(1700000000+g.n), 0)}})
	require.NoError(g.t, err)
	return h.String()
}

func (g *gitRepo) checkout(branch string, create bool, from string) {
	g.t.Helper()
	opts := &git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}
	if from != "" {
		opts.Hash = plumbing.NewHash(from)
	}
	require.NoError(g.t, g.wt.Checkout(opts))
}

func TestChangesFilter(t *testing.T) {
	g := newRepo(t)
	c1 := g.commit("README.md", "src/app.py", "conf/app.ini")
	c2 := g.commit("docs/index.md")   // main: docs only
	g.checkout("feature", true, c1)   // feature forks at c1
	c3 := g.commit("src/app.py")      // feature: code
	g.checkout("docs-only", true, c1) // another branch: docs only
	c4 := g.commit("docs/guide.md")
	g.checkout("main", false, "")
	c5 := g.commit("src/other.py") // main moves on with code after the forks
	_ = c4

	paths := []string{"src/**", "conf/**"}
	for _, tc := range []struct {
		name     string
		head     string
		base     string
		onNoBase string
		git      gitmeta.Context
		run      bool
		reason   string
	}{
		{name: "push touching docs only is skipped", head: c2, git: gitmeta.Context{Event: gitmeta.EventPush, Branch: "main", DefaultBranch: "main", BeforeSHA: c1}, run: false, reason: "none of the 1 files changed since"},
		{name: "push touching src runs", head: c5, git: gitmeta.Context{Event: gitmeta.EventPush, Branch: "main", DefaultBranch: "main", BeforeSHA: c2}, run: true, reason: "1 of the 1 files changed"},
		{name: "PR with code runs", head: c3, git: gitmeta.Context{Event: gitmeta.EventPullRequest, BaseRef: "main", BaseSHA: c5}, run: true},
		{name: "PR with docs only is skipped though the target changed src since the fork", head: c4, git: gitmeta.Context{Event: gitmeta.EventPullRequest, BaseRef: "main", BaseSHA: c5}, run: false},
		{name: "PR base by branch name", head: c4, git: gitmeta.Context{Event: gitmeta.EventPullRequest, BaseRef: "main"}, run: false},
		{name: "new branch push compares with the default branch", head: c3, git: gitmeta.Context{Event: gitmeta.EventPush, Branch: "feature", DefaultBranch: "main"}, run: true, reason: "since " + c1[:12]},
		{name: "explicit base", head: c4, base: "feature", git: gitmeta.Context{Event: gitmeta.EventPush}, run: false},
		{name: "tag pipeline runs by default (GitLab rules:changes)", head: c5, git: gitmeta.Context{Event: gitmeta.EventTag, Tag: "v1"}, run: true, reason: "a tag pipeline has no base to compare with; on-no-base is run"},
		{name: "tag pipeline with on-no-base skip", head: c5, onNoBase: OnNoBaseSkip, git: gitmeta.Context{Event: gitmeta.EventSchedule}, run: false, reason: "a schedule pipeline has no base to compare with; on-no-base is skip"},
		{name: "base missing from a shallow clone", head: c5, onNoBase: OnNoBaseSkip, git: gitmeta.Context{Event: gitmeta.EventPush, BeforeSHA: "1234567890123456789012345678901234567890"}, run: false, reason: "fetch more history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.checkout("main", false, "")
			require.NoError(t, g.wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(tc.head)}))
			if tc.onNoBase == "" {
				tc.onNoBase = OnNoBaseRun
			}
			ch, err := checkChanges(context.Background(), g.dir, paths, tc.base, tc.onNoBase, tc.git)
			require.NoError(t, err)
			require.Equal(t, tc.run, ch.Run, ch.Reason)
			require.Contains(t, ch.Reason, tc.reason)
		})
	}

	t.Run("a skipped gate runs no command and passes", func(t *testing.T) {
		require.NoError(t, g.wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(c2)}))
		o := opts(g.dir)
		o.Paths = paths
		o.Git = gitmeta.Context{Event: gitmeta.EventPush, Branch: "main", DefaultBranch: "main", BeforeSHA: c1}
		o.Run = []string{"touch ran"}
		o.JUnit = []string{"none.xml"}
		res, err := Run(context.Background(), o)
		require.NoError(t, err)
		require.True(t, res.Skipped)
		require.NoFileExists(t, filepath.Join(g.dir, "ran"))
		require.Equal(t, "true", res.Outputs()["skipped"])
		require.Equal(t, "true", res.Outputs()["passed"])
		require.Contains(t, res.Text(), "gate: skipped: none of the 1 files changed")
	})
	t.Run("not a repository", func(t *testing.T) {
		ch, err := checkChanges(context.Background(), t.TempDir(), paths, "", OnNoBaseSkip, gitmeta.Context{Event: gitmeta.EventPush})
		require.NoError(t, err)
		require.False(t, ch.Run)
		require.Contains(t, ch.Reason, "is not a git repository")
	})
}

func TestPathsMatchNegation(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		file  string
		want  bool
	}{
		{[]string{"**", "!docs/**", "!**/*.md"}, "docs/guide.md", false},
		{[]string{"**", "!docs/**", "!**/*.md"}, "README.md", false},
		{[]string{"**", "!docs/**", "!**/*.md"}, "app/main.go", true},
		{[]string{"**", "!docs/**", "docs/api.yaml"}, "docs/api.yaml", true}, // the last match wins
		{[]string{"!docs/**"}, "app/main.go", false},                         // a negation alone selects nothing
		{[]string{"src/**"}, "src/a/b.py", true},
	} {
		require.Equal(t, tc.want, pathsMatch(tc.paths, tc.file), "%v %s", tc.paths, tc.file)
	}
}
