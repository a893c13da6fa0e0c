package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestCIRerunGivesTheSameDigestAndMovesNoTag: in a GitLab job without
// SOURCE_DATE_EPOCH, two builds of the same commit (files touched in
// between, as a fresh checkout does) give the same digest; the second
// writes no manifest. The outputs carry the job's prefix, the version and
// the ref, which ref-file holds too.
func TestCIRerunGivesTheSameDigestAndMovesNoTag(t *testing.T) {
	gittest.RequireGit(t)
	var manifestPuts atomic.Int32
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			manifestPuts.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	work := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	gittest.Git(t, work, "init", "-q", "-b", "main")
	gittest.Git(t, work, "add", ".")
	gittest.Git(t, work, "commit", "-q", "-m", "app")
	sha := gittest.Git(t, work, "rev-parse", "HEAD")
	commitTime := gittest.Git(t, work, "log", "-1", "--format=%ct")
	env := map[string]string{
		"GITLAB_CI": "true", "CI_PROJECT_DIR": work, "CI_JOB_NAME": "build-push:api", "CI_REGISTRY_IMAGE": host + "/group/api",
		"CI_COMMIT_SHA": sha, "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push",
		"INPUT_CONTEXT": work, "INPUT_INSECURE_REGISTRIES": host, "INPUT_REPRODUCIBLE": "", "INPUT_SHORT_SHA_LENGTH": "8",
		"INPUT_REF_FILE": filepath.Join(work, "api.ref"), "INPUT_OUTPUT_PREFIX": "",
	}
	var runs []map[string]string
	for i := range 2 {
		when := time.Now().Add(time.Duration(i) * time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(work, "static", "index.html"), when, when))
		manifestPuts.Store(0)
		code, stdout, stderr := invoke(t, work, nil, env)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		require.Contains(t, stdout, "SOURCE_DATE_EPOCH is not set: using the commit time")
		require.Contains(t, stdout, "SOURCE_DATE_EPOCH="+commitTime)
		data, err := os.ReadFile(filepath.Join(work, "build-push.env"))
		require.NoError(t, err)
		runs = append(runs, outputs(string(data)))
		if i == 0 {
			require.Equal(t, int32(2), manifestPuts.Load(), "first run: latest and the short SHA")
			continue
		}
		require.Zero(t, manifestPuts.Load(), "the rerun wrote a manifest")
		require.Contains(t, stdout, "already at "+runs[0]["BUILD_PUSH_API_DIGEST"])
	}
	first := runs[0]
	require.NotEmpty(t, first["BUILD_PUSH_API_DIGEST"], "dotenv: %v", first)
	require.Equal(t, first["BUILD_PUSH_API_DIGEST"], runs[1]["BUILD_PUSH_API_DIGEST"])
	require.Equal(t, sha[:8], first["BUILD_PUSH_API_VERSION"])
	ref := host + "/group/api:" + sha[:8] + "@" + first["BUILD_PUSH_API_DIGEST"]
	require.Equal(t, ref, first["BUILD_PUSH_API_REF"])
	data, err := os.ReadFile(filepath.Join(work, "api.ref"))
	require.NoError(t, err)
	require.Equal(t, ref+"\n", string(data))
}

// TestRerunAgainstTheRealRegistry: distribution's registry answers the
// HEAD that spares a rerun its manifest writes, and ref names a tag it
// serves at that digest.
func TestRerunAgainstTheRealRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker-registry (the real registry)")
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	refFile := filepath.Join(t.TempDir(), "ref")
	args := []string{"--context", dir, "--tags", reg.Host + "/app:v3," + reg.Host + "/app:latest", "--insecure-registries", reg.Host, "--ref-file", refFile}
	env := map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	code, stdout, stderr := invoke(t, t.TempDir(), args, env)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	first := outputs(stdout)
	require.Equal(t, "v3", first["version"])
	require.Equal(t, reg.Host+"/app:v3@"+first["digest"], first["ref"])
	data, err := os.ReadFile(refFile)
	require.NoError(t, err)
	require.Equal(t, first["ref"]+"\n", string(data))
	r, err := name.ParseReference(first["ref"], name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(r.Context().Tag("v3"))
	require.NoError(t, err)
	require.Equal(t, first["digest"], desc.Digest.String())

	code, stdout, stderr = invoke(t, t.TempDir(), args, env)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Equal(t, first["digest"], outputs(stdout)["digest"])
	require.Equal(t, 2, strings.Count(stderr, "already at "+first["digest"]), stderr)
}
