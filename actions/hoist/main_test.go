package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const stamped = "9.9.9-test"

// install builds hoist as the image has it — stamped with a version,
// stripped — into a directory with a link per tool and an executor link,
// and returns the directory.
func install(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/hoist-ci/hoist/internal/spec.version="+stamped, "-o", filepath.Join(dir, "hoist"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, tool := range spec.Tools() {
		require.NoError(t, os.Symlink("hoist", filepath.Join(dir, tool.Name)))
	}
	require.NoError(t, os.Symlink(filepath.Join(dir, "hoist"), filepath.Join(dir, "executor")))
	return dir
}

// call runs a program of dir in a local (not CI) environment.
func call(t *testing.T, dir, cwd, prog string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, prog), args...)
	cmd.Dir = cwd
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	}
	require.NoError(t, err)
	return 0, o.String(), e.String()
}

func TestDispatch(t *testing.T) {
	dir := install(t)
	cwd := t.TempDir()
	tests := []struct {
		name     string
		prog     string
		args     []string
		wantCode int
		want     string // in stdout
		wantErr  string // in stderr
	}{
		{name: "version", prog: "hoist", args: []string{"--version"}, want: "hoist " + stamped + "\n"},
		{name: "help lists every tool", prog: "hoist", args: []string{"--help"}, want: "executor"},
		{name: "no tool", prog: "hoist", wantCode: 2, wantErr: "usage: hoist <tool>"},
		{name: "unknown tool", prog: "hoist", args: []string{"kaniko"}, wantCode: 2, wantErr: `unknown command "kaniko": the tools are build-push, retag, gate, bump, publish, executor`},
		{name: "tool as first argument", prog: "hoist", args: []string{"retag", "--version"}, want: stamped + "\n"},
		{name: "tool's help as first argument", prog: "hoist", args: []string{"gate", "--help"}, want: "gate " + stamped},
		{name: "link", prog: "bump", args: []string{"--version"}, want: stamped + "\n"},
		{name: "build-push link", prog: "build-push", args: []string{"--help"}, want: "build-push " + stamped},
		{name: "link with a bad flag", prog: "retag", args: []string{"--sauce", "x"}, wantCode: 2, wantErr: "unknown flag --sauce"},
		{name: "executor version", prog: "executor", args: []string{"version"}, want: "hoist build-push " + stamped},
		{name: "executor unknown flag", prog: "executor", args: []string{"--context", ".", "--frobnicate"}, wantCode: 2, wantErr: "executor: error: unknown flag --frobnicate"},
		{name: "executor refuses what it cannot honour", prog: "executor", args: []string{"--registry-map", "a=b"}, wantCode: 2, wantErr: "flag --registry-map is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := call(t, dir, cwd, tc.prog, tc.args...)
			require.Equal(t, tc.wantCode, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Contains(t, stdout, tc.want)
			require.Contains(t, stderr, tc.wantErr)
		})
	}
}

// TestExecutorBuildsAndPushes runs /kaniko/executor with kaniko's flags
// (short ones, flags without effect, the executor's own files) against a
// real registry: the image is pushed, and the digest files agree.
func TestExecutorBuildsAndPushes(t *testing.T) {
	dir := install(t)
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "hello.txt"), []byte("hello\n"), 0o644))
	out := t.TempDir()
	dest := reg.Host + "/shop/web:1"
	code, stdout, stderr := call(t, dir, ctx, "executor",
		"-c", ctx, "-f", filepath.Join(ctx, "Dockerfile"), "-d", dest, "--destination="+reg.Host+"/shop/web:latest",
		"--snapshot-mode=redo", "--single-snapshot", "--cleanup", "--verbosity", "info", "--reproducible", "--insecure",
		"--digest-file", filepath.Join(out, "digest"),
		"--image-name-with-digest-file", filepath.Join(out, "name"),
		"--image-name-tag-with-digest-file", filepath.Join(out, "tags"))
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	for _, f := range []string{"snapshot-mode", "single-snapshot", "cleanup"} {
		require.Contains(t, stderr, "executor: note: --"+f+": accepted for kaniko compatibility, no effect")
	}
	digest, err := os.ReadFile(filepath.Join(out, "digest"))
	require.NoError(t, err)
	d := strings.TrimSpace(string(digest))
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, d)
	tags, err := os.ReadFile(filepath.Join(out, "tags"))
	require.NoError(t, err)
	require.Equal(t, dest+"@"+d+"\n"+reg.Host+"/shop/web:latest@"+d+"\n", string(tags))
	names, err := os.ReadFile(filepath.Join(out, "name"))
	require.NoError(t, err)
	require.Contains(t, string(names), reg.Host+"/shop/web@"+d)
	ref, err := name.ParseReference(dest, name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(ref, remote.WithContext(t.Context()))
	require.NoError(t, err)
	require.Equal(t, d, desc.Digest.String())
}
