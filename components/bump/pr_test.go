package bump

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

const prToken = "CANARY-pr-token-91d3"

// TestPullRequestMode pushes the bump branch over git's smart HTTP (git
// http-backend, token auth) and drives the GitHub or GitLab API against
// recorded request/response fixtures (testdata/forge/*.json): open, update,
// and a merged pull request whose branch is not brought back.
func TestPullRequestMode(t *testing.T) {
	for _, forge := range []struct {
		kind, header, value string
	}{
		{"github", "Authorization", "Bearer " + prToken},
		{"gitlab", "PRIVATE-TOKEN", prToken},
	} {
		t.Run(forge.kind, func(t *testing.T) {
			root := t.TempDir()
			bare := gittest.BareRepo(t, filepath.Join(mkdir(t, root, "acme")), "gitops", gitopsTree)
			run := func(fixture, version string) Result {
				t.Helper()
				srv := gittest.NewServer(t, root, filepath.Join("testdata", "forge", forge.kind+"-"+fixture+".json"), forge.header, forge.value, prToken)
				o := opts(srv.URL + "/acme/gitops.git")
				o.Images = []string{"registry.example.com/team/app=" + version}
				o.Mode, o.Token, o.Forge, o.Labels = ModePullRequest, prToken, forge.kind, []string{"deploy", "automated"}
				res, err := Run(context.Background(), o)
				require.NoError(t, err)
				srv.Check()
				require.NotContains(t, res.Message+res.Diff+res.PullRequestURL, prToken)
				return res
			}
			mainBefore := gittest.Git(t, bare, "rev-parse", "main")
			head := "hoist/bump/registry.example.com-team-app"

			res := run("create", "1.4.2")
			require.True(t, res.Changed)
			require.Contains(t, res.PullRequestURL, map[string]string{"github": "/pull/7", "gitlab": "/merge_requests/3"}[forge.kind])
			require.Equal(t, res.PullRequestURL, res.Outputs()["pull-request-url"])
			require.Equal(t, mainBefore, gittest.Git(t, bare, "rev-parse", "main"), "main is untouched in pull-request mode")
			require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", head))
			require.Contains(t, gittest.Show(t, bare, head, "overlays/prod/kustomization.yaml"), `newTag: "1.4.2"`)

			// A newer version updates the same branch (replaced, based on main) and pull request.
			res = run("update", "1.4.3")
			require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", head))
			require.Equal(t, mainBefore, gittest.Git(t, bare, "rev-parse", head+"^"))
			require.Contains(t, gittest.Show(t, bare, head, "overlays/prod/kustomization.yaml"), `newTag: "1.4.3"`)

			if forge.kind == "github" {
				// Its pull request was merged: a new branch, the old one untouched.
				old := gittest.Git(t, bare, "rev-parse", head)
				res = run("merged", "1.4.4")
				require.Contains(t, res.PullRequestURL, "/pull/9")
				require.Equal(t, old, gittest.Git(t, bare, "rev-parse", head))
				require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", head+"-1.4.4"))
			}
		})
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	p := filepath.Join(parent, name)
	gittest.Git(t, parent, "init", "--quiet", "--bare", filepath.Join(p, "unused.git"))
	return p
}

func TestPullRequestNeedsHTTPS(t *testing.T) {
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	o := opts(bare)
	o.Mode = ModePullRequest
	_, err := Run(context.Background(), o)
	require.ErrorContains(t, err, "pull-request mode needs an https repository URL")
	require.False(t, strings.Contains(err.Error(), "token"))
}
