package e2e

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

const (
	bumpWorkflow = "examples/github/bump.yml"
	bumpPipeline = "examples/gitlab/bump/.gitlab-ci.yml"
	// gitopsSeed is what the GitOps repository starts with; its host
	// registry.example.com becomes the loopback registry's.
	gitopsSeed = "examples/gitops"
	// gitopsExpected holds the files bump changes, as they must read after
	// the bump, with registry.example.com and DIGEST for the pushed digest.
	gitopsExpected = "test/e2e/testdata/bump/expected"
	gitopsHost     = "registry.example.com"
	// gitopsTokenCanary is the token the git server wants: never printed.
	gitopsTokenCanary = "e2e-gitops-token-3d9a7e"
)

// testBump runs the delivery examples — build-push of examples/app, then bump
// with the pushed digest — as the container actions under act and as the
// components under gitlab-ci-local, against a bare GitOps repository seeded
// from examples/gitops and served over smart HTTP on loopback, and checks
// the repository afterwards.
func testBump(t *testing.T, r *rig) {
	t.Run("github-act", func(t *testing.T) { testBumpUnderAct(t, r) })
	t.Run("gitlab-ci-local", func(t *testing.T) { testBumpUnderGitLabCILocal(t, r) })
}

// gitops is a bare GitOps repository behind a loopback git server.
type gitops struct {
	url, bare, seedCommit string
	files                 map[string]string
	server                *gittest.Server
}

// newGitOps serves a GitOps repository seeded from examples/gitops, its
// image host replaced by host.
func newGitOps(t *testing.T, r *rig, host string) *gitops {
	t.Helper()
	return serveGitOps(t, seedFiles(t, filepath.Join(r.root, gitopsSeed), host))
}

// seedFiles reads every file under root (paths relative to it, with /),
// the image host registry.example.com replaced by host.
func seedFiles(t *testing.T, root, host string) map[string]string {
	t.Helper()
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = strings.ReplaceAll(string(data), gitopsHost, host)
		return nil
	}))
	return files
}

// serveGitOps makes a bare repository holding files on main and serves it
// over smart HTTP, push enabled, behind basic auth with gitopsTokenCanary.
func serveGitOps(t *testing.T, files map[string]string) *gitops {
	t.Helper()
	parent := t.TempDir()
	g := &gitops{files: files, bare: gittest.BareRepo(t, parent, "gitops", files)}
	g.seedCommit = g.git(t, "rev-parse", "main")
	g.server = gittest.NewServer(t, parent, "", "", "", gitopsTokenCanary)
	g.url = g.server.URL + "/gitops.git"
	return g
}

// gitRaw runs git on the bare repository and returns its stdout as is (file
// contents are compared byte for byte).
func (g *gitops) gitRaw(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", g.bare}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
	}
	require.NoError(t, err, "git %s", strings.Join(args, " "))
	return string(out)
}

func (g *gitops) git(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(g.gitRaw(t, args...))
}

// requireBumped checks the repository after the pipeline: exactly one new
// commit on main, a child of the seed (linear history, nothing forced), the
// expected files byte-exactly as in testdata with the pushed digest, every
// other file as seeded, no file added or removed. It returns the commit.
func (g *gitops) requireBumped(t *testing.T, r *rig, host, digest, sourceCommit string) string {
	t.Helper()
	g.server.Check() // no forge API call in commit mode
	head := g.git(t, "rev-parse", "main")
	require.NotEqual(t, g.seedCommit, head, "main did not move: bump committed nothing")
	require.Equal(t, []string{head + " " + g.seedCommit}, strings.Split(g.git(t, "rev-list", "--parents", g.seedCommit+"..main"), "\n"),
		"main must gain exactly one commit whose only parent is the seed")
	require.Equal(t, "2", g.git(t, "rev-list", "--count", "main"))
	require.Equal(t, "main", strings.TrimPrefix(g.git(t, "symbolic-ref", "HEAD"), "refs/heads/"))
	require.Equal(t, "refs/heads/main", g.git(t, "for-each-ref", "--format=%(refname)", "refs/heads/"),
		"commit mode must not create branches")

	subject := g.git(t, "log", "-1", "--format=%s", "main")
	require.Contains(t, subject, "chore(deploy): web ", "the example's message template")
	require.Contains(t, g.git(t, "log", "-1", "--format=%B", "main"), sourceCommit[:7], "the message names the source commit")
	require.Equal(t, "hoist-bot <hoist-bot@users.noreply.github.com>", g.git(t, "log", "-1", "--format=%an <%ae>", "main"))

	expected := map[string]string{}
	exRoot := filepath.Join(r.root, gitopsExpected)
	require.NoError(t, filepath.WalkDir(exRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(exRoot, p)
		if err != nil {
			return err
		}
		s := strings.ReplaceAll(string(data), gitopsHost, host)
		expected[filepath.ToSlash(rel)] = strings.ReplaceAll(s, "DIGEST", digest)
		return nil
	}))
	require.Len(t, expected, 3)
	var changed []string
	for f := range expected {
		changed = append(changed, f)
	}
	sort.Strings(changed)
	require.Equal(t, strings.Join(changed, "\n"), g.git(t, "diff", "--name-only", g.seedCommit, "main"))

	var seeded []string
	for f := range g.files {
		seeded = append(seeded, f)
	}
	sort.Strings(seeded)
	require.Equal(t, strings.Join(seeded, "\n"), g.git(t, "ls-tree", "-r", "--name-only", "main"), "files added or removed")
	for _, f := range seeded {
		want, ok := expected[f]
		if !ok {
			want = g.files[f]
		}
		require.Equal(t, want, g.gitRaw(t, "cat-file", "blob", "main:"+f), "%s at main", f)
	}
	return head
}

// testBumpUnderAct runs examples/github/bump.yml on a push to main: the
// build-push step pushes examples/app, the bump step pins the GitOps
// repository to its digest, and the last step prints bump's outputs.
func testBumpUnderAct(t *testing.T, r *rig) {
	ws := t.TempDir()
	files := map[string]string{
		bumpWorkflow:              ".github/workflows/deliver.yml",
		"actions/bump/action.yml": "actions/bump/action.yml",
	}
	for k, v := range appFiles {
		files[k] = v
	}
	r.copyFiles(t, ws, files)
	sha := r.gitRepo(t, ws, "https://github.com/acme/app.git")
	reg, base, baseLayer := appRegistry(t)
	repo := reg.Host + "/acme/web"
	g := newGitOps(t, r, reg.Host)

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	workflow := ".github/workflows/deliver.yml"
	args := []string{
		"--var", "IMAGE=" + repo,
		"--var", "BUILD_ARGS=BASE=" + base,
		"--var", "INSECURE_REGISTRIES=" + reg.Host,
		"--var", "GITOPS_REPOSITORY=" + g.url,
		"--secret", "GITHUB_TOKEN=" + tokenCanary,
		"--secret", "GITOPS_TOKEN=" + gitopsTokenCanary,
	}
	start := time.Now()
	out, err := r.act(ctx, t, ws, workflow, args...)
	t.Logf("act ran the delivery workflow in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "act "+strings.Join(args, " "), out, err)

	digest := requireApp(t, repo+":"+sha[:githubShortSHA], baseLayer)
	commit := g.requireBumped(t, r, reg.Host, digest, sha)
	require.Contains(t, out, "gitops changed=true commit="+commit+" files=apps/web/base/deployment.yaml,apps/web/overlays/prod/kustomization.yaml,apps/web/overlays/staging/kustomization.yaml",
		"the step after bump did not get its outputs")
	require.NotContains(t, out, tokenCanary, "the GITHUB_TOKEN secret was printed")
	require.NotContains(t, out, gitopsTokenCanary, "the GitOps token was printed")
}

// testBumpUnderGitLabCILocal runs examples/gitlab/bump/.gitlab-ci.yml: the
// build-push component's job pushes examples/app, the bump component's job
// gets its image and digest from the dotenv report, and the report job gets
// bump's. `repository` is set because the GitOps repository is not the
// project's own (the component's default, $CI_SERVER_URL/$CI_PROJECT_PATH.git,
// would be gitlab.example.com here); the token is the default HOIST_BUMP_TOKEN.
func testBumpUnderGitLabCILocal(t *testing.T, r *rig) {
	ws := t.TempDir()
	files := map[string]string{bumpPipeline: ".gitlab-ci.yml"}
	for k, v := range appFiles {
		files[k] = v
	}
	r.withTemplates(t, files)
	r.copyFiles(t, ws, files)
	sha := r.gitRepo(t, ws, gitlabRemote)
	reg, base, baseLayer := appRegistry(t)
	repo := reg.Host + "/acme/web"
	g := newGitOps(t, r, reg.Host)

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	args := []string{
		"--variable", "CI_REGISTRY_IMAGE=" + repo,
		"--variable", "BASE_IMAGE=" + base,
		"--variable", "INSECURE_REGISTRIES=" + reg.Host,
		"--variable", "GITOPS_REPOSITORY=" + g.url,
		"--variable", "HOIST_BUMP_TOKEN=" + gitopsTokenCanary,
		"--ignore-predefined-vars", "CI_REGISTRY_IMAGE",
	}
	start := time.Now()
	out, err := r.gitlabCILocal(ctx, t, ws, args...)
	t.Logf("gitlab-ci-local ran the delivery pipeline in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "gitlab-ci-local", out, err)

	digest := requireApp(t, repo+":"+sha[:gitlabShortSHA], baseLayer)
	commit := g.requireBumped(t, r, reg.Host, digest, sha)
	dotenv, err := os.ReadFile(filepath.Join(ws, ".gitlab-ci-local", "artifacts", "bump", ".gitlab-ci-reports", "dotenv", "bump.env"))
	require.NoError(t, err, "the bump job produced no dotenv report bump.env")
	lines := strings.Split(string(dotenv), "\n")
	require.Contains(t, lines, "BUMP_CHANGED=true")
	require.Contains(t, lines, "BUMP_COMMIT="+commit)
	require.Contains(t, out, "gitops changed=true commit="+commit+" files=apps/web/base/deployment.yaml,apps/web/overlays/prod/kustomization.yaml,apps/web/overlays/staging/kustomization.yaml",
		"the report job did not get the bump job's dotenv outputs")
	require.NotContains(t, out, gitopsTokenCanary, "the GitOps token was printed")
}
