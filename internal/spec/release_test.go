package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestReleaseWorkflow: the release runs on version tags, refuses a tag that
// is not the declared Version before it builds anything, stamps the version,
// builds the image with hoist's own build-push, and moves the major tag
// only after the image and the GitHub release (whose archives the host
// actions of that tag download) exist.
func TestReleaseWorkflow(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "release.yml"))
	require.NoError(t, err)
	var wf struct {
		On struct {
			Push struct {
				Tags []string `yaml:"tags"`
			} `yaml:"push"`
		} `yaml:"on"`
		Jobs map[string]struct {
			Steps []struct {
				Name string `yaml:"name"`
				Uses string `yaml:"uses"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &wf))
	require.Equal(t, []string{"v*"}, wf.On.Push.Tags)
	require.Len(t, wf.Jobs, 1)
	var runs []string
	for _, job := range wf.Jobs {
		for _, s := range job.Steps {
			runs = append(runs, s.Run)
		}
	}
	index := func(what string) int {
		for i, r := range runs {
			if strings.Contains(r, what) {
				return i
			}
		}
		t.Fatalf("no step of the release workflow runs %q", what)
		return -1
	}
	check := index("specgen -release-tag")
	build := index("make build dist VERSION=${{ steps.version.outputs.version }}")
	image := index("bin/build-push")
	release := index("gh release create")
	major := index(`git push --force origin "refs/tags/$MAJOR"`)
	require.Less(t, check, build, "the tag is checked before anything is built")
	require.Less(t, build, image)
	require.Less(t, image, release)
	require.Less(t, release, major, "the major tag moves last")
	require.NotContains(t, string(data), "docker build", "the image is built with hoist's build-push")
	require.Contains(t, runs[release], "dist/*.tar.gz dist/checksums.txt", "the release carries what the host actions download")
}

// TestGitLabCatalogRelease: the GitLab mirror publishes the catalog version
// <x.y.z> (no v) from a tag v<x.y.z> with the release keyword.
func TestGitLabCatalogRelease(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".gitlab-ci.yml"))
	require.NoError(t, err)
	var ci map[string]any
	require.NoError(t, yaml.Unmarshal(data, &ci))
	job, ok := ci["catalog-release"].(map[string]any)
	require.True(t, ok, "no catalog-release job")
	release, ok := job["release"].(map[string]any)
	require.True(t, ok, "catalog-release has no release keyword")
	require.Equal(t, "$VERSION", release["tag_name"])
	require.Equal(t, "$CI_COMMIT_SHA", release["ref"])
	require.Contains(t, string(data), `echo "VERSION=${CI_COMMIT_TAG#v}"`)
	require.Contains(t, string(data), `$CI_COMMIT_TAG =~ /^v[0-9]+\.[0-9]+\.[0-9]+$/`)
}
