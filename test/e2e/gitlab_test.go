package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	gitlabPipeline = "examples/gitlab/.gitlab-ci.yml"
	// gitlabShortSHA is GitLab's CI_COMMIT_SHORT_SHA length.
	gitlabShortSHA = 8
	// gitlabRemote makes gitlab-ci-local's CI_PROJECT_PATH group/hoist, so
	// `component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/retag@$CI_COMMIT_SHA`
	// resolves to this checkout's templates/retag.yml.
	gitlabRemote = "https://gitlab.example.com/group/hoist.git"
)

// testGitLabUnderGitLabCILocal runs examples/gitlab/.gitlab-ci.yml, which
// includes templates/retag.yml as a CI/CD component, on a tag pipeline for
// v1.4.2 with the docker executor, and checks the registry, the dotenv report
// and the later job that reads it.
func testGitLabUnderGitLabCILocal(t *testing.T, r *rig) {
	ws := t.TempDir()
	files := map[string]string{gitlabPipeline: ".gitlab-ci.yml"}
	r.withTemplates(t, files)
	r.copyFiles(t, ws, files)
	sha := r.gitRepo(t, ws, gitlabRemote)

	// The build job of the branch pipeline pushed $CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA.
	reg, digest := pushSource(t, sha[:gitlabShortSHA])
	repo := reg.Host + "/demo/app"

	ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
	defer cancel()
	args := []string{
		// A tag pipeline: gitlab-ci-local takes the branch from git.
		"--variable", "CI_COMMIT_TAG=" + releaseTag,
		"--variable", "CI_COMMIT_REF_NAME=" + releaseTag,
		"--variable", "CI_COMMIT_REF_SLUG=" + strings.ReplaceAll(releaseTag, ".", "-"),
		"--unset-variable", "CI_COMMIT_BRANCH",
		// The project's registry is the loopback one.
		"--variable", "CI_REGISTRY_IMAGE=" + repo,
		"--variable", "INSECURE_REGISTRIES=" + reg.Host,
		"--ignore-predefined-vars", "CI_REGISTRY_IMAGE,CI_COMMIT_TAG,CI_COMMIT_REF_NAME,CI_COMMIT_REF_SLUG,CI_COMMIT_BRANCH",
	}
	start := time.Now()
	out, err := r.gitlabCILocal(ctx, t, ws, args...)
	t.Logf("gitlab-ci-local ran the release pipeline in %s", time.Since(start).Round(time.Millisecond))
	requireRun(t, "gitlab-ci-local "+strings.Join(args, " "), out, err)

	requireTags(t, repo, wantTags, digest)

	dotenv, err := os.ReadFile(filepath.Join(ws, ".gitlab-ci-local", "artifacts", "retag", ".gitlab-ci-reports", "dotenv", "retag.env"))
	require.NoError(t, err, "the retag job produced no dotenv report retag.env")
	require.Contains(t, strings.Split(string(dotenv), "\n"), "RETAG_DIGEST="+digest)
	require.Contains(t, out, "RETAG_DIGEST="+digest, "the deploy job did not get RETAG_DIGEST from the dotenv report")
	require.Contains(t, out, "deploying "+repo+"@"+digest)
}
