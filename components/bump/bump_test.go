package bump

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

const dig = "sha256:2222222222222222222222222222222222222222222222222222222222222222"

var gitopsTree = map[string]string{
	"base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/team/app:1.4.1 # pinned by CI
`,
	"overlays/prod/kustomization.yaml": `# prod
resources:
  - ../../base
images:
  - name: registry.example.com/team/app
    newTag: "1.4.1"   # bumped by CI
`,
	"README.md": "not yaml\n",
}

func opts(repo string) Options {
	return Options{
		Images:       []string{"registry.example.com/team/app=1.4.2"},
		Repository:   repo,
		Branch:       "main",
		AuthorName:   "hoist-bot",
		AuthorEmail:  "bot@example.com",
		SourceCommit: "0123456789abcdef0123456789abcdef01234567",
		TempDir:      os.TempDir(),
	}
}

func TestRunCommitsOnceThenNothing(t *testing.T) {
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	res, err := Run(context.Background(), opts(bare))
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, []string{"base/deployment.yaml", "overlays/prod/kustomization.yaml"}, res.Files)
	require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", "main"))
	require.Equal(t, map[string]string{"changed": "true", "files": "base/deployment.yaml,overlays/prod/kustomization.yaml", "commit": res.Commit, "pull-request-url": ""}, res.Outputs())

	msg := gittest.Git(t, bare, "log", "-1", "--format=%B", "main")
	require.True(t, strings.HasPrefix(msg, "chore(deploy): bump registry.example.com/team/app to 1.4.2\n\n"), msg)
	require.Contains(t, msg, "- overlays/prod/kustomization.yaml:6 newTag: 1.4.1 -> 1.4.2")
	require.Contains(t, msg, "Source-Commit: 0123456789abcdef0123456789abcdef01234567")
	require.Equal(t, "hoist-bot <bot@example.com>", gittest.Git(t, bare, "log", "-1", "--format=%an <%ae>", "main"))
	require.Equal(t, strings.Replace(gitopsTree["overlays/prod/kustomization.yaml"], `"1.4.1"`, `"1.4.2"`, 1),
		gittest.Show(t, bare, "main", "overlays/prod/kustomization.yaml")+"\n")

	again, err := Run(context.Background(), opts(bare))
	require.NoError(t, err)
	require.False(t, again.Changed)
	require.Empty(t, again.Commit)
	require.Equal(t, "false", again.Outputs()["changed"])
	require.Len(t, gittest.Log(t, bare, "main"), 2, "no empty commit")
}

func TestRunMessageTemplate(t *testing.T) {
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	o := opts(bare)
	o.Message = "deploy {{.Image}}: {{.Old}} → {{.New}} ({{.SourceCommit}})"
	_, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, "deploy registry.example.com/team/app: registry.example.com/team/app:1.4.1 → registry.example.com/team/app:1.4.2 (0123456789abcdef0123456789abcdef01234567)",
		gittest.Git(t, bare, "log", "-1", "--format=%s", "main"))

	o.Message = "{{.Nope}}"
	o.Images = []string{"registry.example.com/team/app=1.4.3"}
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "message template")
	require.Len(t, gittest.Log(t, bare, "main"), 2)
}

func TestDryRunWritesNothing(t *testing.T) {
	// On the checkout: no git needed, nothing written.
	ws := t.TempDir()
	for f, c := range gitopsTree {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(ws, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ws, f), []byte(c), 0o644))
	}
	o := opts("")
	o.Workspace, o.Mode = ws, ModeDryRun
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.True(t, res.Changed && res.DryRun)
	require.Empty(t, res.Commit)
	require.Contains(t, res.Diff, "--- a/overlays/prod/kustomization.yaml\n+++ b/overlays/prod/kustomization.yaml\n")
	require.Contains(t, res.Diff, "-    newTag: \"1.4.1\"   # bumped by CI\n+    newTag: \"1.4.2\"   # bumped by CI\n")
	for f, c := range gitopsTree {
		b, err := os.ReadFile(filepath.Join(ws, f))
		require.NoError(t, err)
		require.Equal(t, c, string(b))
	}

	// On a repository: cloned, not pushed.
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	o = opts(bare)
	o.Mode = ModeDryRun
	res, err = Run(context.Background(), o)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, res.Diff, "+          image: registry.example.com/team/app:1.4.2 # pinned by CI\n")
	require.Len(t, gittest.Log(t, bare, "main"), 1)
}

func TestCheckoutTargetPushesToOrigin(t *testing.T) {
	parent := t.TempDir()
	bare := gittest.BareRepo(t, parent, "gitops", gitopsTree)
	ws := filepath.Join(parent, "checkout")
	gittest.Git(t, parent, "clone", "--quiet", bare, ws)
	o := opts("")
	o.Workspace, o.Branch = filepath.Join(ws, "overlays"), ""
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", "main"))
}

func TestInputErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		err  string
	}{
		{"bad entry", func(o *Options) { o.Images = []string{"registry.example.com/team/app"} }, `images entry "registry.example.com/team/app": want name=newref`},
		{"nothing", func(o *Options) { o.Images = nil }, "nothing to bump"},
		{"tag without image", func(o *Options) { o.Images = nil; o.Tag = "1" }, "given without image"},
		{"image without version", func(o *Options) { o.Images = nil; o.Image = "team/app" }, `image "team/app": give tag or digest`},
		{"pin", func(o *Options) { o.Pin = "sha" }, `pin "sha"`},
		{"pin needs digest", func(o *Options) { o.Pin = "digest" }, "pin is digest but the new reference has no digest"},
		{"mode", func(o *Options) { o.Mode = "merge" }, `mode "merge": want commit, pull-request or dry-run`},
		{"token over ssh", func(o *Options) { o.Repository = "ssh://git@127.0.0.1:1/x.git"; o.Token = "t" }, "is not an https URL"},
		{"ssh key", func(o *Options) { o.Repository = "ssh://git@127.0.0.1:1/x.git"; o.SSHKey = "not a key" }, "ssh-key: not a usable private key"},
		{"no checkout", func(o *Options) { o.Repository = ""; o.Workspace = t.TempDir() }, "is not a git checkout"},
		{"outside", func(o *Options) { o.Paths = []string{"../etc"} }, `paths entry "../etc" is outside the repository`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bare := filepath.Join(t.TempDir(), "none.git")
			if tc.name == "outside" {
				bare = gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
			}
			o := opts(bare)
			tc.edit(&o)
			_, err := Run(context.Background(), o)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestImageInputsFromBuildPush(t *testing.T) {
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", gitopsTree)
	o := opts(bare)
	o.Images, o.Image, o.Tag, o.Digest = nil, "registry.example.com/team/app@"+dig, "1.4.2", ""
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, gittest.Show(t, bare, "main", "base/deployment.yaml"), "image: registry.example.com/team/app:1.4.2@"+dig+" # pinned by CI")
	require.Contains(t, gittest.Show(t, bare, "main", "overlays/prod/kustomization.yaml"), "    digest: "+dig)
}

// TestExampleGitOpsRepository dry-runs the bump the example's README shows.
func TestExampleGitOpsRepository(t *testing.T) {
	ws := t.TempDir()
	src := filepath.Join("..", "..", "examples", "gitops")
	require.NoError(t, filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(ws, rel)), 0o755))
		return os.WriteFile(filepath.Join(ws, rel), b, 0o644)
	}))
	const apiDigest = "sha256:4f5e6d7c8b9a00112233445566778899aabbccddeeff00112233445566778899"
	res, err := Run(context.Background(), Options{
		Workspace: ws, Mode: ModeDryRun,
		Images:     []string{"registry.example.com/acme/web=1.5.0", "registry.example.com/acme/api=2.3.1@" + apiDigest},
		ValuePaths: []string{"registry.example.com/acme/api=global.image.tag"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"apps/api/values.yaml", "apps/web/base/deployment.yaml", "apps/web/overlays/prod/kustomization.yaml", "apps/web/overlays/staging/kustomization.yaml", "argocd/api.yaml"}, res.Files)
	for _, line := range []string{
		"+          image: registry.example.com/acme/web:1.5.0 # same image, runs migrations\n",
		"+          image: registry.example.com/acme/web:1.5.0\n",
		"+    newTag: \"1.5.0\" # bumped by CI\n",
		"-    digest: sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
		"+    tag: 2.3.1 # read by the api's subcharts\n",
		"+  tag: \"2.3.1\"\n",
		"+  digest: \"" + apiDigest + "\"\n",
		"+            value: \"2.3.1\" # hoist:image=registry.example.com/acme/api:tag\n",
	} {
		require.Contains(t, res.Diff, line)
	}
	added := strings.Count(res.Diff, "\n+") - strings.Count(res.Diff, "\n+++")
	require.Equal(t, 8, added, "one added line per edited value:\n%s", res.Diff)
}
