package e2e

import (
	"context"
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
)

// testBuildPush builds the COPY-only examples/app with the example
// pipelines — the container action under act, the component under
// gitlab-ci-local — pushing to the real registry, and checks the image there.
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

// appRegistry starts a registry holding a base image and returns it with
// the base's first layer.
func appRegistry(t *testing.T) (*testrig.Reg, string, v1.Hash) {
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	base := reg.Host + "/library/busybox:1.36"
	testrig.PushRandomImage(t, base)
	ref, err := name.ParseReference(base, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(ref, remote.WithContext(t.Context()))
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	d, err := layers[0].Digest()
	require.NoError(t, err)
	return reg, base, d
}

// requireApp checks the image built from examples/app.
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
	first, err := layers[0].Digest()
	require.NoError(t, err)
	require.Equal(t, baseLayer, first, "the image is built on the base")
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
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
	}
	start := time.Now()
	out, err := r.act(ctx, t, ws, workflow, args...)
	t.Logf("act ran the build workflow in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "act "+strings.Join(args, " "), out, err)

	digest := requireApp(t, repo+":"+sha[:githubShortSHA], baseLayer)
	require.Contains(t, out, "built digest="+digest)
	require.NotContains(t, out, tokenCanary)
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
	}
	start := time.Now()
	out, err := r.gitlabCILocal(ctx, t, ws, args...)
	t.Logf("gitlab-ci-local ran the build pipeline in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "gitlab-ci-local", out, err)

	digest := requireApp(t, repo+":"+sha[:gitlabShortSHA], baseLayer)
	require.Contains(t, out, "built digest="+digest)
	// The cache repository got the layer.
	cache, err := name.NewRepository(repo+"/cache", name.Insecure)
	require.NoError(t, err)
	tags, err := remote.List(cache, remote.WithContext(t.Context()))
	require.NoError(t, err)
	require.NotEmpty(t, tags)
}
