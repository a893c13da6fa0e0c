package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/command/buildpush"
	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const canary = "CANARY-7c2d-build-push-password"

// invoke runs the binary's whole path — inputs, registry, component,
// outputs — in process.
func invoke(t *testing.T, dir string, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = ci.Main(context.Background(), spec.BuildPush(), ci.Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdout: &out,
		Stderr: &errb,
		Dir:    dir,
	}, buildpush.Run)
	return code, out.String(), errb.String()
}

func appDir(t *testing.T, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "static"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "index.html"), []byte("<h1>hi</h1>\n"), 0o644))
	return dir
}

func outputs(stdout string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestIssueCLIForms runs both command lines of the issue against the real
// registry.
func TestIssueCLIForms(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker-registry (the real registry)")
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	base := reg.Host + "/base/busybox:1"
	testrig.PushRandomImage(t, base)
	dir := appDir(t, "ARG BASE\nFROM $BASE\nCOPY static/ /srv/www/\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-h\", \"/srv/www\"]\n")

	forms := map[string][]string{
		"hoist": {"--context", dir, "--file", filepath.Join(dir, "Dockerfile"), "--tags", reg.Host + "/app:v1", "--insecure-registries", reg.Host, "--build-args", "BASE=" + base},
		"kaniko": {"--context", "dir://" + dir, "--dockerfile", filepath.Join(dir, "Dockerfile"), "--destination", reg.Host + "/app:v2", "--insecure", "--skip-tls-verify-pull",
			"--build-arg", "BASE=" + base, "--cache=true", "--cache-ttl", "24h", "--snapshot-mode", "redo", "--single-snapshot", "--cleanup", "--use-new-run", "--cache-run-layers=true", "--cache-copy-layers", "--verbosity", "info", "--push-retry", "2",
			"--digest-file", filepath.Join(dir, "digest"), "--image-name-with-digest-file", filepath.Join(dir, "names")},
	}
	digests := map[string]string{}
	for form, args := range forms {
		t.Run(form, func(t *testing.T) {
			code, stdout, stderr := invoke(t, t.TempDir(), args, map[string]string{})
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			out := outputs(stdout)
			require.True(t, strings.HasPrefix(out["digest"], "sha256:"), stdout)
			digests[form] = out["digest"]
			tag := map[string]string{"hoist": "v1", "kaniko": "v2"}[form]
			ref, err := name.ParseReference(reg.Host+"/app:"+tag, name.Insecure)
			require.NoError(t, err)
			desc, err := remote.Head(ref)
			require.NoError(t, err)
			require.Equal(t, out["digest"], desc.Digest.String())
		})
	}
	data, err := os.ReadFile(filepath.Join(dir, "digest"))
	require.NoError(t, err)
	require.Equal(t, digests["kaniko"], string(data))
	data, err = os.ReadFile(filepath.Join(dir, "names"))
	require.NoError(t, err)
	require.Equal(t, reg.Host+"/app@"+digests["kaniko"]+"\n", string(data))
}

// surface is one way the tool is run: the CLI, a GitHub action, a GitLab
// job. In env, OUT and SUM become files of the work directory and DIR
// the directory itself.
type surface struct {
	name string
	env  map[string]string
	args []string
}

// runSurface runs the tool as s and returns its exit code and everything
// it printed or wrote (outputs, summary, dotenv), without the
// ::add-mask:: commands, which register values with the runner and are
// never shown.
func runSurface(t *testing.T, s surface) (int, string) {
	t.Helper()
	work := t.TempDir()
	env := map[string]string{}
	for k, v := range s.env {
		switch v {
		case "OUT", "SUM":
			v = filepath.Join(work, v)
		case "DIR":
			v = work
		}
		env[k] = v
	}
	code, stdout, stderr := invoke(t, work, s.args, env)
	all := stdout + stderr
	for _, f := range []string{"OUT", "SUM", "build-push.env"} {
		if b, err := os.ReadFile(filepath.Join(work, f)); err == nil {
			all += string(b)
		}
	}
	var kept []string
	for _, l := range strings.Split(all, "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			kept = append(kept, l)
		}
	}
	return code, strings.Join(kept, "\n")
}

// TestRunSecretNeverLeaks builds a RUN that prints its secret, through
// the real main on every surface: the value is masked in the output and
// absent from the image; the RUN itself ran (in the sandbox, the test
// binary serving as its init, as the build-push binary does).
func TestRunSecretNeverLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker-registry (the real registry)")
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	base, err := testrig.BusyboxImage()
	require.NoError(t, err)
	testrig.PushImage(t, base, reg.Host+"/base/busybox:1")
	dir := appDir(t, "FROM "+reg.Host+"/base/busybox:1\nRUN --mount=type=secret,id=token cat /run/secrets/token && echo && wc -c < /run/secrets/token > /token-length\nRUN --mount=type=secret,id=token,env=TOKEN echo \"token is $TOKEN\"\n")
	for _, platform := range []surface{
		{"cli", map[string]string{"HOIST_TOKEN": canary}, []string{"--context", dir, "--tags", reg.Host + "/app:cli", "--secrets", "token=env:HOIST_TOKEN", "--insecure-registries", reg.Host}},
		{"github", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM",
			"INPUT_CONTEXT": dir, "INPUT_TAGS": reg.Host + "/app:github", "INPUT_SECRETS": "token=" + canary, "INPUT_INSECURE-REGISTRIES": reg.Host,
		}, nil},
		{"gitlab", map[string]string{
			"GITLAB_CI": "true", "CI_PROJECT_DIR": "DIR", "HOIST_TOKEN": canary,
			"INPUT_CONTEXT": dir, "INPUT_TAGS": reg.Host + "/app:gitlab", "INPUT_SECRETS": "token=env:HOIST_TOKEN", "INPUT_INSECURE_REGISTRIES": reg.Host,
			"INPUT_REPRODUCIBLE": "", "INPUT_BUILD_ARGS": "", "INPUT_PUSH_RETRY": "",
		}, nil},
	} {
		t.Run(platform.name, func(t *testing.T) {
			code, all := runSurface(t, platform)
			require.Equal(t, 0, code, all)
			require.NotContains(t, all, canary)
			require.Contains(t, all, "token is ***")
			ref, err := name.ParseReference(reg.Host+"/app:"+platform.name, name.Insecure)
			require.NoError(t, err)
			img, err := remote.Image(ref)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			for _, l := range layers {
				rc, err := l.Uncompressed()
				require.NoError(t, err)
				data, err := io.ReadAll(rc)
				require.NoError(t, err)
				rc.Close()
				require.NotContains(t, string(data), canary)
			}
		})
	}
}

func TestCanaryPasswordNeverLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker-registry (the real registry)")
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "right-password"}})
	dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	for _, platform := range []surface{
		{"cli", map[string]string{}, []string{"--context", dir, "--tags", reg.Host + "/app:v1", "--username", "ci", "--password", canary, "--insecure-registries", reg.Host}},
		{"github", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM",
			"INPUT_CONTEXT": dir, "INPUT_TAGS": reg.Host + "/app:v1", "INPUT_USERNAME": "ci", "INPUT_PASSWORD": canary, "INPUT_INSECURE-REGISTRIES": reg.Host,
		}, nil},
		{"gitlab", map[string]string{
			"GITLAB_CI": "true", "CI_PROJECT_DIR": "DIR",
			"INPUT_CONTEXT": dir, "INPUT_TAGS": reg.Host + "/app:v1", "INPUT_USERNAME": "ci", "INPUT_PASSWORD": canary, "INPUT_INSECURE_REGISTRIES": reg.Host,
			"INPUT_REPRODUCIBLE": "", "INPUT_BUILD_ARGS": "", "INPUT_PUSH_RETRY": "",
		}, nil},
	} {
		t.Run(platform.name, func(t *testing.T) {
			code, all := runSurface(t, platform)
			require.Equal(t, 1, code, all)
			require.NotContains(t, all, canary)
			require.Contains(t, all, "401")
		})
	}
}

func TestGitLabJobWritesDotenv(t *testing.T) {
	host := testrig.InProcessRegistry(t)
	dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	work := t.TempDir()
	env := map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_DIR": work, "CI_REGISTRY_IMAGE": host + "/group/app",
		"CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567", "CI_COMMIT_SHORT_SHA": "01234567",
		"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push",
		"INPUT_CONTEXT": dir, "INPUT_INSECURE_REGISTRIES": host, "INPUT_REPRODUCIBLE": "", "INPUT_SHORT_SHA_LENGTH": "8",
		"SOURCE_DATE_EPOCH": "1700000000",
	}
	code, stdout, stderr := invoke(t, work, nil, env)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	data, err := os.ReadFile(filepath.Join(work, "build-push.env"))
	require.NoError(t, err)
	dotenv := outputs(string(data))
	require.Equal(t, host+"/group/app:latest,"+host+"/group/app:01234567", dotenv["BUILD_PUSH_TAGS"])
	require.True(t, strings.HasPrefix(dotenv["BUILD_PUSH_IMAGE"], host+"/group/app@sha256:"))

	// Reproducible by SOURCE_DATE_EPOCH: the same digest again.
	code, _, _ = invoke(t, work, nil, env)
	require.Equal(t, 0, code)
	data2, err := os.ReadFile(filepath.Join(work, "build-push.env"))
	require.NoError(t, err)
	require.Equal(t, dotenv["BUILD_PUSH_DIGEST"], outputs(string(data2))["BUILD_PUSH_DIGEST"])
}

// TestNoBuildKitSolver keeps dockerfile2llb and LLB (hundreds of packages)
// out of the binary: only the parser, instructions and shell are used.
func TestNoBuildKitSolver(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, dep := range strings.Split(string(out), "\n") {
		require.NotContains(t, dep, "dockerfile2llb")
		require.False(t, strings.HasPrefix(dep, "github.com/moby/buildkit/client"), "%s is imported", dep)
		require.False(t, strings.HasPrefix(dep, "github.com/moby/buildkit/solver"), "%s is imported", dep)
	}
	require.Contains(t, string(out), "github.com/moby/buildkit/frontend/dockerfile/instructions")
}

func TestNoPushWritesATarballOnly(t *testing.T) {
	dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	// Nothing listens on 127.0.0.1:1: a registry call would fail the run.
	code, stdout, stderr := invoke(t, t.TempDir(), []string{"--context", "dir://" + dir, "--dockerfile", "Dockerfile", "--destination", "127.0.0.1:1/app:v1", "--no-push", "--tar-path", tarPath, "--reproducible"}, map[string]string{})
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.FileExists(t, tarPath)
	require.True(t, strings.HasPrefix(outputs(stdout)["digest"], "sha256:"))
}

func TestUsageErrors(t *testing.T) {
	dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--context", dir, "--push=false", "--platforms", "linux/amd64,linux/arm64", "--tar-path", filepath.Join(dir, "x.tar")}, "tar-path holds one image"},
		{[]string{"--context", dir, "--push=false", "--platforms", "amd64"}, `platforms: platform "amd64": want os/arch`},
		{[]string{"--context", dir, "--push=false", "--cache-ttl", "two weeks"}, `input "cache-ttl": "two weeks" is not a duration`},
		{[]string{"--context", dir, "--push=false", "--labels", "novalue"}, `input "labels": "novalue" has no value`},
		{[]string{"--context", dir, "--compression", "zstd", "--media-types", "docker", "--push=false"}, "compression zstd needs media-types oci"},
		{[]string{"--context", dir}, "no destination"},
	} {
		code, stdout, stderr := invoke(t, t.TempDir(), c.args, map[string]string{})
		require.NotEqual(t, 0, code)
		require.Contains(t, stdout+stderr, c.want)
	}
}
