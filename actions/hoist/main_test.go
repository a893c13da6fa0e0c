package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/hoist-ci/hoist/internal/spec.stamped="+stamped, "-o", filepath.Join(dir, "hoist"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, tool := range spec.Tools() {
		require.NoError(t, os.Symlink("hoist", filepath.Join(dir, tool.Name)))
	}
	require.NoError(t, os.Symlink("hoist", filepath.Join(dir, "executor")))
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

// TestRunThroughTheMultiCallBinary builds a Dockerfile with a RUN through
// hoist: the sandbox re-executes the binary as its init, and build-push
// re-executes it to conceal its arguments (as uid 65534, also to enter a
// user namespace). Each re-execution must come back to build-push, whether
// it was called through a link or as `hoist build-push`.
func TestRunThroughTheMultiCallBinary(t *testing.T) {
	installed := install(t)
	// Readable by uid 65534: the binaries, the context, HOME and TMPDIR.
	shared := testrig.SharedDir(t)
	dir := filepath.Join(shared, "bin")
	require.NoError(t, os.CopyFS(dir, os.DirFS(installed)))
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	base := reg.Host + "/library/busybox:1"
	img, err := testrig.BusyboxImage()
	require.NoError(t, err)
	testrig.PushImage(t, img, base)
	ctxDir := filepath.Join(shared, "context")
	require.NoError(t, os.Mkdir(ctxDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN echo ran > /ran.txt && id -u > /uid.txt\n"), 0o644))

	for _, tc := range []struct {
		name   string
		nobody bool
		prog   string
		args   []string
	}{
		{name: "root, through the link", prog: "build-push"},
		{name: "root, as hoist build-push", prog: "hoist", args: []string{"build-push"}},
		{name: "uid 65534, as hoist build-push", nobody: true, prog: "hoist", args: []string{"build-push"}},
		{name: "uid 65534, as kaniko's executor", nobody: true, prog: "executor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := filepath.Join(shared, strings.ReplaceAll(tc.name, " ", "-"))
			for _, d := range []string{work, filepath.Join(work, "home"), filepath.Join(work, "tmp")} {
				require.NoError(t, os.Mkdir(d, 0o755))
				require.NoError(t, os.Chown(d, testrig.NobodyUID, testrig.NobodyUID))
			}
			flags := []string{"--context", ctxDir, "--destination", reg.Host + "/shop/run:1", "--no-push", "--tar-path", filepath.Join(work, "image.tar"), "--insecure-pull"}
			if tc.prog != "executor" {
				flags = []string{"--context", ctxDir, "--tags", reg.Host + "/shop/run:1", "--push=false", "--tar-path", filepath.Join(work, "image.tar"), "--insecure-registries", reg.Host}
			}
			cmd := exec.CommandContext(t.Context(), filepath.Join(dir, tc.prog), append(tc.args, flags...)...)
			cmd.Dir = work
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Join(work, "home"), "TMPDIR=" + filepath.Join(work, "tmp")}
			if tc.nobody {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testrig.NobodyUID, Gid: testrig.NobodyUID, Groups: []uint32{}}}
			}
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			built, err := tarball.ImageFromPath(filepath.Join(work, "image.tar"), nil)
			require.NoError(t, err)
			layers, err := built.Layers()
			require.NoError(t, err)
			files := layerContents(t, layers[len(layers)-1])
			require.Equal(t, "ran\n", files["ran.txt"], "%s", out)
			require.Equal(t, "0\n", files["uid.txt"], "the RUN runs as the stage's root")
		})
	}
}

// layerContents reads a layer's regular files by path.
func layerContents(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")] = string(data)
	}
}

// TestExecutorRegistryCertificate: kaniko's --registry-certificate
// REGISTRY=/path/ca.crt makes the executor trust that CA: a push to the
// registry behind TLS with a CA of its own works with it, and fails on the
// certificate without it.
func TestExecutorRegistryCertificate(t *testing.T) {
	dir := install(t)
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	target := &url.URL{Scheme: "http", Host: reg.Host}
	front := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.SetXForwarded()
		r.Out.Host = r.In.Host
	}})
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "https://")
	caDir := t.TempDir()
	caFile := filepath.Join(caDir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o644))
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY a /a\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "a"), []byte("a\n"), 0o644))

	code, stdout, stderr := call(t, dir, ctx, "executor", "--context", ctx, "--destination", host+"/shop/tls:1")
	require.NotEqual(t, 0, code, "pushed without trusting the CA:\n%s", stdout)
	require.Contains(t, stderr, "certificate")

	code, stdout, stderr = call(t, dir, ctx, "executor", "--context", ctx, "--destination", host+"/shop/tls:1", "--registry-certificate", host+"="+caFile)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stderr, "executor: note: --registry-certificate "+host+": every certificate in "+caDir+" is trusted as a CA")
	require.Contains(t, stdout, "digest=sha256:")
}
