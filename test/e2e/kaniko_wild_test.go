package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

// TestKanikoJobsFromTheWild runs two kaniko jobs published by people
// outside the project (testdata/kaniko-wild.gitlab-ci.yml), unchanged but
// for the image, against a registry that wants GitLab's job credentials:
// every tag they name is pushed, the second run takes every step from the
// cache, and the password is never printed.
func TestKanikoJobsFromTheWild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gitlab-ci-local in the rig's engine")
	}
	r := newRig(t)
	jobs, err := os.ReadFile(filepath.Join("testdata", "kaniko-wild.gitlab-ci.yml"))
	require.NoError(t, err)
	ws := t.TempDir()
	reg, base, auth := authRegistry(t, "gitlab-ci-token", "e2e-outside-canary-0c9d")
	require.NoError(t, os.WriteFile(filepath.Join(ws, ".gitlab-ci.yml"), jobs, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "public"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "public", "index.html"), []byte("<h1>hi</h1>\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM "+base+` AS build
WORKDIR /src
COPY . .
RUN mkdir -p /out && cp -r public /out/ && echo built > /out/VERSION
FROM `+base+`
COPY --from=build /out /usr/share/app
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/usr/share/app/public"]
`), 0o644))
	sha := r.gitRepo(t, ws, gitlabRemote)
	args := []string{
		"--variable", "CI_REGISTRY=" + reg.Host,
		"--variable", "CI_REGISTRY_IMAGE=" + reg.Host + "/group/hoist",
		"--variable", "CI_REGISTRY_USER=gitlab-ci-token",
		"--variable", "CI_REGISTRY_PASSWORD=e2e-outside-canary-0c9d",
		"--variable", "INPUT_INSECURE_REGISTRIES=" + reg.Host,
		"--ignore-predefined-vars", "CI_REGISTRY,CI_REGISTRY_IMAGE,CI_REGISTRY_USER,CI_REGISTRY_PASSWORD",
	}
	for _, round := range []string{"cold", "warm"} {
		ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
		out, err := r.gitlabCILocal(ctx, t, ws, args...)
		cancel()
		requireRun(t, "gitlab-ci-local "+round, out, err)
		require.NotContains(t, out, "e2e-outside-canary-0c9d")
		for _, tag := range []string{sha[:8], "latest", "main_" + sha[:8]} {
			ref, err := name.ParseReference(reg.Host+"/group/hoist:"+tag, name.Insecure)
			require.NoError(t, err)
			_, err = remote.Head(ref, remote.WithContext(t.Context()), auth)
			require.NoError(t, err, tag)
		}
		if round == "warm" {
			require.True(t, strings.Contains(out, "cache hit"), "the warm run took nothing from the cache")
		}
	}
}
