// Package e2e runs the example pipelines end to end: examples/github under
// act and examples/gitlab under gitlab-ci-local, both with the docker
// executor of the rig's Docker engine, on a simulated tag pipeline, against
// Debian's registry on a loopback port. The tests need the rig (`make test`
// installs and starts it); without it they fail, and -short skips them.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	// releaseTag is the git tag of the simulated tag pipelines.
	releaseTag = "v1.4.2"
	// baseImage is a plain busybox image: act's ubuntu-latest runner and
	// gitlab-ci-local's image for jobs without one.
	baseImage = "hoist-rig/busybox:latest"
	// helperImage is gitlab-ci-local's --helper-image: it copies artifacts
	// out of job volumes with bash and rsync.
	helperImage = "hoist-rig/helper:latest"

	buildTimeout    = 5 * time.Minute
	dockerTimeout   = 2 * time.Minute
	pipelineTimeout = 5 * time.Minute
	logTailLines    = 120
)

// wantTags are the tags a retag of releaseTag writes: semver aliases, and
// latest (auto), as 1.4.2 is the highest release in the repository.
var wantTags = []string{"v1.4.2", "1.4.2", "1.4", "1", "latest"}

// rig is what the pipelines run with: the repository, the tools and an
// environment for them in which the rig's images are loaded.
type rig struct {
	root  string
	tools map[string]string
	env   []string
	home  string
}

// TestPipelines builds the binaries and images once, loads the images into
// the rig's engine, then runs every tool's example pipelines under act and
// gitlab-ci-local.
func TestPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end pipelines need the rig's Docker engine, act and gitlab-ci-local (make test); skipped in -short mode")
	}
	r := newRig(t)
	t.Run("retag", func(t *testing.T) {
		t.Run("github-act", func(t *testing.T) { testGitHubUnderAct(t, r) })
		t.Run("gitlab-ci-local", func(t *testing.T) { testGitLabUnderGitLabCILocal(t, r) })
	})
	t.Run("build-push", func(t *testing.T) { testBuildPush(t, r) })
	t.Run("bump", func(t *testing.T) { testBump(t, r) })
	t.Run("gate", func(t *testing.T) { testGate(t, r) })
	t.Run("deliver", func(t *testing.T) {
		t.Run("gitlab-ci-local", func(t *testing.T) { testDeliverUnderGitLabCILocal(t, r) })
		t.Run("github-act", func(t *testing.T) { testDeliverUnderAct(t, r) })
	})
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, spec.Image())
}

// newRigWith is newRig with hoist's image loaded under hoistTag.
func newRigWith(t *testing.T, hoistTag string) *rig {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))

	if os.Getenv("DOCKER_HOST") == "" {
		t.Fatalf("DOCKER_HOST is not set: the end-to-end tests run pipelines in the rig's Docker engine. " +
			"Run `make test`, or `make rig-install rig-up && . .cache/rig/env` and then go test ./test/e2e")
	}
	r := newToolRig(t, root, "docker", "act", "gitlab-ci-local", "git", "rsync", "go")

	ctx, cancel := context.WithTimeout(t.Context(), dockerTimeout)
	defer cancel()
	if out, err := r.run(ctx, root, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Fatalf("the Docker engine at DOCKER_HOST=%s does not answer (start it with `make rig-up`): %v\n%s", os.Getenv("DOCKER_HOST"), err, out)
	}

	start := time.Now()
	r.loadImages(t, hoistTag)
	t.Logf("built the binaries and the images, loaded them into the engine in %s", time.Since(start).Round(time.Millisecond))
	return r
}

// newToolRig finds the tools (on PATH or in .cache/tools/bin) and makes the
// environment the pipelines run with.
func newToolRig(t *testing.T, root string, tools ...string) *rig {
	t.Helper()
	r := &rig{root: root, tools: map[string]string{}, home: t.TempDir()}
	toolDir := filepath.Join(root, ".cache", "tools", "bin")
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			if p2 := filepath.Join(toolDir, tool); isExecutable(p2) {
				p, err = p2, nil
			}
		}
		if err != nil {
			t.Fatalf("%s is not installed: run `make rig-install` (test/rig/install.sh installs act, crane and gitlab-ci-local into .cache/tools/bin)", tool)
		}
		r.tools[tool] = p
	}
	r.env = pipelineEnv(os.Environ(), r.home, toolDir)
	return r
}

// loadImages builds hoist's multi-call binary statically, assembles hoist's
// image as `make image` does (tagged hoistTag: as the generated action.yml
// and component run it, for newRig) and the rig's base and helper images
// with test/rig/mkimage, and docker-loads them.
func (r *rig) loadImages(t *testing.T, hoistTag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin") + string(filepath.Separator)
	mkimage := filepath.Join(dir, "mkimage")
	// The build keeps this process's environment (and so its build cache).
	buildEnv := append(os.Environ(), "CGO_ENABLED=0")
	for _, args := range [][]string{
		{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./actions/hoist"},
		{"build", "-o", mkimage, "./test/rig/mkimage"},
	} {
		if out, err := command(ctx, r.root, buildEnv, r.tools["go"], args...); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	images := []struct {
		tag  string
		args []string
	}{
		{hoistTag, []string{"--binaries", bin}},
		{baseImage, nil},
		{helperImage, []string{"--host-binary", "/bin/bash", "--host-binary", r.tools["rsync"]}},
	}
	for i, img := range images {
		tarball := filepath.Join(dir, fmt.Sprintf("image-%d.tar", i))
		args := append([]string{"--tag", img.tag, "--tarball", tarball}, img.args...)
		if out, err := command(ctx, r.root, r.env, mkimage, args...); err != nil {
			t.Fatalf("mkimage %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if out, err := r.run(ctx, r.root, "docker", "load", "-i", tarball); err != nil {
			t.Fatalf("docker load -i %s (%s): %v\n%s", tarball, img.tag, err, out)
		}
	}
	// The images replaced by this run's are left untagged in the engine.
	if out, err := r.run(ctx, r.root, "docker", "image", "prune", "--force"); err != nil {
		t.Logf("docker image prune: %v\n%s", err, out)
	}
}

// pipelineEnv is the environment act and gitlab-ci-local run with: this
// process's, without anything a CI platform or the tools themselves read as
// configuration (so a run inside GitHub Actions or GitLab CI behaves the same),
// a private HOME, and the rig's tools on PATH.
func pipelineEnv(environ []string, home, toolDir string) []string {
	var env []string
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		switch {
		case key == "HOME", key == "PATH", key == "CI", key == "XDG_CONFIG_HOME", key == "XDG_CACHE_HOME":
		case strings.HasPrefix(key, "GITHUB_"), strings.HasPrefix(key, "GITLAB_"), strings.HasPrefix(key, "CI_"),
			strings.HasPrefix(key, "RUNNER_"), strings.HasPrefix(key, "INPUT_"), strings.HasPrefix(key, "ACT_"),
			strings.HasPrefix(key, "GCL_"), strings.HasPrefix(key, "DOCKER_CONFIG"):
		default:
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home, "PATH="+toolDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// run runs one of the rig's tools in dir with the pipelines' environment and
// returns its combined output.
// act runs a push of workflow in ws under act the way every GitHub pipeline
// here runs: the base image as the runner, no pulls, the host's
// architecture, no Docker socket in the job, no cache server, plus extra
// arguments (event, variables, secrets).
func (r *rig) act(ctx context.Context, t *testing.T, ws, workflow string, extra ...string) (string, error) {
	args := append([]string{
		"push",
		"-W", workflow,
		"-P", "ubuntu-latest=" + baseImage,
		"--pull=false",
		"--container-architecture", "linux/" + runtime.GOARCH,
		"--container-daemon-socket", "-",
		"--no-cache-server",
		"--action-cache-path", filepath.Join(t.TempDir(), "act-cache"),
	}, extra...)
	return r.run(ctx, ws, "act", args...)
}

// withTemplates adds every GitLab component (templates/*.yml) to files, so
// that `include: component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/<name>@<sha>`
// resolves in the workspace as it does in the project.
func (r *rig) withTemplates(t *testing.T, files map[string]string) map[string]string {
	t.Helper()
	templates, err := filepath.Glob(filepath.Join(r.root, "templates", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, templates)
	for _, tpl := range templates {
		rel, err := filepath.Rel(r.root, tpl)
		require.NoError(t, err)
		files[rel] = rel
	}
	return files
}

// gitlabCILocal runs gitlab-ci-local in ws the way every GitLab pipeline
// here runs: every job in the rig's engine (jobs without an image get the
// base image), the helper image that copies artifacts and dotenv reports,
// no pulls, the host's network (the registry is on loopback), plus extra
// arguments (variables). gitlab-ci-local 4.70.1 does not interpolate
// $[[ component.version ]], so it sets the variable the components set from
// it (HOIST_VERSION) as GitLab would for an include of @<spec.Version>: the
// default job image is then the one loadImages tagged.
func (r *rig) gitlabCILocal(ctx context.Context, t *testing.T, ws string, extra ...string) (string, error) {
	args := append([]string{
		"--variable", spec.VersionVariable + "=" + spec.Version,
		"--home", t.TempDir(),
		"--no-shell-executor-no-image",
		"--default-image", baseImage,
		"--helper-image", helperImage,
		"--pull-policy", "if-not-present",
		"--network", "host",
		"--no-color",
	}, extra...)
	return r.run(ctx, ws, "gitlab-ci-local", args...)
}

func (r *rig) run(ctx context.Context, dir, tool string, args ...string) (string, error) {
	return command(ctx, dir, r.env, r.tools[tool], args...)
}

func command(ctx context.Context, dir string, env []string, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	return out.String(), err
}

// gitRepo makes dir a git repository with one commit of its files and an
// origin remote, as a clone of remote would be, and returns the commit.
func (r *rig) gitRepo(t *testing.T, dir, remote string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.name", "hoist e2e"},
		{"config", "user.email", "e2e@hoist.invalid"},
		{"config", "commit.gpgsign", "false"},
		{"add", "-A"},
		{"commit", "-q", "-m", "Release 1.4.2"},
		{"remote", "add", "origin", remote},
		{"update-ref", "refs/remotes/origin/main", "HEAD"},
		{"symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"},
	} {
		if out, err := r.run(ctx, dir, "git", args...); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := r.run(ctx, dir, "git", "rev-parse", "HEAD")
	require.NoError(t, err, out)
	return strings.TrimSpace(out)
}

// copyFiles copies files (paths relative to the repository root) to dst,
// each to the path named in the map, creating directories.
func (r *rig) copyFiles(t *testing.T, dst string, files map[string]string) {
	t.Helper()
	for from, to := range files {
		data, err := os.ReadFile(filepath.Join(r.root, from))
		require.NoError(t, err, "reading %s", from)
		target := filepath.Join(dst, to)
		require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))
		require.NoError(t, os.WriteFile(target, data, 0o644))
	}
}

// pushSource pushes a random image to a fresh registry as demo/app:<tag>
// and returns the registry and the image's digest.
func pushSource(t *testing.T, tag string) (*testrig.Reg, string) {
	t.Helper()
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	desc := testrig.PushRandomImage(t, reg.Host+"/demo/app:"+tag)
	return reg, desc.Digest.String()
}

// requireTags fails unless every tag of repo resolves to digest.
func requireTags(t *testing.T, repo string, tags []string, digest string) {
	t.Helper()
	for _, tag := range tags {
		ref, err := name.ParseReference(repo+":"+tag, name.Insecure)
		require.NoError(t, err)
		desc, err := remote.Head(ref, remote.WithContext(t.Context()))
		require.NoError(t, err, "%s was not written", ref)
		require.Equal(t, digest, desc.Digest.String(), "%s points at another image", ref)
	}
}

// requireRun fails the test with the tail of a pipeline's output.
func requireRun(t *testing.T, what, out string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s failed: %v\nlast %d lines of its output:\n%s", what, err, logTailLines, tail(out, logTailLines))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func isExecutable(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}
