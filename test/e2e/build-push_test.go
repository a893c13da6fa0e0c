package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	buildPushWorkflow = "examples/github/build-push.yml"
	buildPushPipeline = "examples/gitlab/build-push.gitlab-ci.yml"
	// appTokenCanary is the app-token secret of examples/app's RUN: in no
	// layer, never printed.
	appTokenCanary = "e2e-canary-app-token-81b3d2"
	// buildInfo is the file examples/app's RUN writes.
	buildInfo = "srv/www/build-info.txt"
)

// testBuildPush builds examples/app, whose RUN writes a build-info page
// with the app-token secret mounted, with the example pipelines — the
// container action under act, the component under gitlab-ci-local — each
// running hoist's image in the rig's engine without --privileged, pushing
// to the real registry; then checks the image there and serves it.
func testBuildPush(t *testing.T, r *rig) {
	t.Run("github-act", func(t *testing.T) { testBuildPushUnderAct(t, r) })
	t.Run("gitlab-ci-local", func(t *testing.T) { testBuildPushUnderGitLabCILocal(t, r) })
}

var appFiles = map[string]string{
	"examples/app/Dockerfile":        "examples/app/Dockerfile",
	"examples/app/.dockerignore":     "examples/app/.dockerignore",
	"examples/app/static/index.html": "examples/app/static/index.html",
	"actions/build-push/action.yml":  "actions/build-push/action.yml",
}

// appRegistry starts a registry holding the busybox base (a shell and
// busybox's applets for the RUN, httpd to serve) and returns it with the
// base's reference and layer.
func appRegistry(t *testing.T) (*testrig.Reg, string, v1.Hash) {
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	base := reg.Host + "/library/busybox:1.36"
	img, err := testrig.BusyboxImage()
	require.NoError(t, err)
	testrig.PushImage(t, img, base)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	d, err := layers[0].Digest()
	require.NoError(t, err)
	return reg, base, d
}

// requireApp checks the image built from examples/app: its config, its
// base, the RUN's build-info page (listing the COPYed page's checksum) and
// no trace of the app-token secret in any layer. It returns the image's
// digest.
func requireApp(t *testing.T, ref string, baseLayer v1.Hash) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	require.NoError(t, err, "%s was not pushed", ref)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, []string{"httpd", "-f", "-v", "-p", "8080", "-h", "/srv/www"}, cf.Config.Cmd)
	require.Equal(t, "1000:1000", cf.Config.User)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3, "the base, the COPY and the RUN")
	first, err := layers[0].Digest()
	require.NoError(t, err)
	require.Equal(t, baseLayer, first, "the image is built on the base")

	raw, err := img.RawConfigFile()
	require.NoError(t, err)
	require.False(t, bytes.Contains(raw, []byte(appTokenCanary)), "the app-token secret is in the image's config")
	run := layerFiles(t, layers[2])
	for p, f := range run {
		require.NotContains(t, p, "run/secrets", "the secret's mount point reached the RUN's layer")
		require.False(t, bytes.Contains(f.data, []byte(appTokenCanary)), "the app-token secret reached the RUN's layer (%s)", p)
	}
	info, ok := run[buildInfo]
	require.True(t, ok, "the RUN's layer has no %s; it has %v", buildInfo, keys(run))
	require.Equal(t, 1000, info.uid, "build-info.txt is the app user's")
	page, err := os.ReadFile(filepath.Join("..", "..", "examples", "app", "static", "index.html"))
	require.NoError(t, err)
	sum := sha256.Sum256(page)
	for _, want := range []string{"hoist example app\n", "\nBusyBox v", "\napp-token secret: ", "\n" + hex.EncodeToString(sum[:]) + "  ./index.html\n"} {
		require.Contains(t, string(info.data), want, "%s", info.data)
	}
	for _, l := range layers[:2] {
		for p, f := range layerFiles(t, l) {
			require.False(t, bytes.Contains(f.data, []byte(appTokenCanary)), "the app-token secret reached a layer (%s)", p)
		}
	}
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
}

type layerFile struct {
	uid  int
	data []byte
}

// layerFiles reads a layer's entries by path (without a leading ./ or /),
// with the contents of its regular files.
func layerFiles(t *testing.T, l v1.Layer) map[string]layerFile {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	out := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")] = layerFile{uid: hdr.Uid, data: data}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// requireSecretGiven checks that the RUN of the image ref names had the
// app-token secret (its build-info page says so).
func requireSecretGiven(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	info := layerFiles(t, layers[len(layers)-1])[buildInfo]
	require.Contains(t, string(info.data), "\napp-token secret: given\n", "the RUN did not get the app-token secret")
}

// requireRunLog checks a pipeline's log: the RUN ran in a chroot (inside
// an unprivileged container, namespaces are refused, so isolation auto
// falls back to chroot; a --privileged job would have had namespaces), and
// no secret was printed.
func requireRunLog(t *testing.T, out string) {
	t.Helper()
	require.Contains(t, out, "isolation=chroot", "the RUN did not run in a chroot")
	require.NotContains(t, out, "isolation=namespaces", "the job's container permitted namespaces: was it privileged?")
	require.NotContains(t, out, appTokenCanary, "the app-token secret was printed")
}

// requireServes runs the pushed image in the rig's engine with its own
// command (httpd as user 1000, on port 8080 of a network of its own) and
// fetches the RUN's page from it.
func requireServes(t *testing.T, r *rig, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dockerTimeout)
	defer cancel()
	out, err := r.run(ctx, r.root, "docker", "pull", "--quiet", ref)
	require.NoError(t, err, "docker pull %s: %s", ref, out)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
		defer cancel()
		if out, err := r.run(ctx, r.root, "docker", "rmi", ref); err != nil {
			t.Logf("docker rmi %s: %v\n%s", ref, err, out)
		}
	})
	// The image's CMD in the background, then the page over loopback.
	script := `"$@" & for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/build-info.txt && exit 0; sleep 0.1; done; exit 1`
	out, err = r.run(ctx, r.root, "docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", ref,
		"-c", script, "sh", "httpd", "-f", "-v", "-p", "8080", "-h", "/srv/www")
	require.NoError(t, err, "serving %s: %s", ref, out)
	require.Contains(t, out, "app-token secret: given")
}

func testBuildPushUnderAct(t *testing.T, r *rig) {
	ws := t.TempDir()
	files := map[string]string{buildPushWorkflow: ".github/workflows/build.yml"}
	for k, v := range appFiles {
		files[k] = v
	}
	r.copyFiles(t, ws, files)
	sha := r.gitRepo(t, ws, "https://github.com/acme/app.git")
	reg, base, baseLayer := appRegistry(t)
	repo := reg.Host + "/acme/app"

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	workflow := ".github/workflows/build.yml"
	args := []string{
		"--var", "IMAGE=" + repo,
		"--var", "BUILD_ARGS=BASE=" + base,
		"--var", "INSECURE_REGISTRIES=" + reg.Host,
		"--secret", "GITHUB_TOKEN=" + tokenCanary,
		"--secret", "APP_TOKEN=" + appTokenCanary,
	}
	start := time.Now()
	out, err := r.act(ctx, t, ws, workflow, args...)
	t.Logf("act ran the build workflow in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "act "+strings.Join(redact(args), " "), out, err)

	ref := repo + ":" + sha[:githubShortSHA]
	digest := requireApp(t, ref, baseLayer)
	requireSecretGiven(t, ref)
	require.Contains(t, out, "built digest="+digest)
	require.NotContains(t, out, tokenCanary)
	requireRunLog(t, out)
	requireServes(t, r, ref)
}

func testBuildPushUnderGitLabCILocal(t *testing.T, r *rig) {
	ws := t.TempDir()
	files := map[string]string{buildPushPipeline: ".gitlab-ci.yml"}
	for k, v := range appFiles {
		files[k] = v
	}
	r.withTemplates(t, files)
	r.copyFiles(t, ws, files)
	sha := r.gitRepo(t, ws, gitlabRemote)
	reg, base, baseLayer := appRegistry(t)
	repo := reg.Host + "/group/hoist"

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	args := []string{
		"--variable", "CI_REGISTRY_IMAGE=" + repo,
		"--variable", "BASE_IMAGE=" + base,
		"--variable", "INSECURE_REGISTRIES=" + reg.Host,
		"--variable", "APP_TOKEN=" + appTokenCanary,
	}
	start := time.Now()
	out, err := r.gitlabCILocal(ctx, t, ws, args...)
	t.Logf("gitlab-ci-local ran the build pipeline in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "gitlab-ci-local "+strings.Join(redact(args), " "), out, err)

	ref := repo + ":" + sha[:gitlabShortSHA]
	digest := requireApp(t, ref, baseLayer)
	requireSecretGiven(t, ref)
	require.Contains(t, out, "built digest="+digest)
	requireRunLog(t, out)
	// The cache repository got the layers.
	cache, err := name.NewRepository(repo+"/cache", name.Insecure)
	require.NoError(t, err)
	tags, err := remote.List(cache, remote.WithContext(t.Context()))
	require.NoError(t, err)
	require.NotEmpty(t, tags)
	// Nothing gitlab-ci-local keeps of the job (artifacts, logs) holds the secret.
	requireNoCanaryIn(t, filepath.Join(ws, ".gitlab-ci-local"), appTokenCanary)
	requireServes(t, r, ref)

	// A rebuild of the same commit takes the COPY's and the RUN's layers
	// from the cache: the base is not unpacked, nothing runs.
	first := layerDigests(t, ref)
	start = time.Now()
	out, err = r.gitlabCILocal(ctx, t, ws, args...)
	t.Logf("gitlab-ci-local ran the build pipeline again in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "gitlab-ci-local (rebuild) "+strings.Join(redact(args), " "), out, err)
	require.Equal(t, 2, strings.Count(out, "cache hit"), "the rebuild did not take the COPY and the RUN from the cache")
	require.NotContains(t, out, "RUN line=", "the rebuild ran the RUN")
	require.NotContains(t, out, "unpacked the stage", "the rebuild unpacked the base")
	require.NotContains(t, out, appTokenCanary, "the app-token secret was printed")
	require.Equal(t, first, layerDigests(t, ref), "the rebuild has other layers")
}

// layerDigests lists the layers of the image ref names.
func layerDigests(t *testing.T, ref string) []v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	require.NoError(t, err)
	m, err := img.Manifest()
	require.NoError(t, err)
	var out []v1.Hash
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// redact replaces the canaries in a command line for a failure message
// (the test would otherwise print them itself).
func redact(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, appTokenCanary, "***")
		out[i] = strings.ReplaceAll(a, tokenCanary, "***")
	}
	return out
}

// requireNoCanaryIn fails if any regular file under dir contains canary.
func requireNoCanaryIn(t *testing.T, dir, canary string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(canary)) {
			return errors.New(p + " holds the secret")
		}
		return nil
	})
	require.NoError(t, err)
}
