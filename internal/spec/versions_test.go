package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The one version scheme (docs/pipelines.md):
//   - GitHub: uses: hoist-ci/hoist[/actions/<tool>[/host]]@v0 (the moving
//     major tag) or @v<Version>; the reusable workflow likewise;
//   - GitLab: component: $CI_SERVER_FQDN/hoist-ci/hoist/<name>@<Version>
//     ($CI_COMMIT_SHA in this repository's own examples, which include the
//     templates of the commit under test);
//   - the image: ghcr.io/hoist-ci/hoist:<Version>, or :${HOIST_VERSION} in a
//     GitLab component (set from $[[ component.version ]]);
//   - Azure Pipelines: the hoist repository resource at ref: refs/tags/v<Version>.
//
// The release process (docs/releasing.md, the release workflows) names any
// release: <x.y.z>, or the $VERSION its pipeline computes, in place of <Version>.
var (
	githubRefPattern = regexp.MustCompile(`hoist-ci/hoist((?:/[A-Za-z0-9._-]+)*)@([A-Za-z0-9._~$<>{}-]*[A-Za-z0-9_~$<>}])`)
	imageRefPattern  = regexp.MustCompile(`hoist-ci/hoist:(\$\{[A-Z_]+\}|\$[A-Z_]+|[A-Za-z0-9._<>-]*[A-Za-z0-9_>])`)
	azureRefPattern  = regexp.MustCompile(`ref:\s*refs/tags/([A-Za-z0-9._-]*[A-Za-z0-9_])`)
)

// versionRefProblems lists the references in text that break the scheme,
// each as "line N: <what> (want <what>)". With azure, `ref: refs/tags/...`
// lines are the hoist repository resource's and are checked too.
func versionRefProblems(text string, azure bool) []string {
	var problems []string
	githubOK := []string{MajorTag(), "v" + Version, "v<x.y.z>", "v$VERSION"}
	versionOK := []string{Version, "<x.y.z>", "$VERSION"}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		for _, m := range githubRefPattern.FindAllStringSubmatch(line, -1) {
			path, ref := m[1], m[2]
			switch {
			case path == "" || strings.HasPrefix(path, "/actions/") || strings.HasPrefix(path, "/.github/"):
				if !slices.Contains(githubOK, ref) {
					problems = append(problems, fmt.Sprintf("line %d: GitHub ref hoist-ci/hoist%s@%s (want @%s or @v%s)", n, path, ref, MajorTag(), Version))
				}
			default: // a GitLab component: hoist-ci/hoist/<name>@<version>
				if !slices.Contains(versionOK, ref) {
					problems = append(problems, fmt.Sprintf("line %d: GitLab component hoist-ci/hoist%s@%s (want @%s)", n, path, ref, Version))
				}
			}
		}
		for _, m := range imageRefPattern.FindAllStringSubmatch(line, -1) {
			tag := m[1]
			if !slices.Contains(versionOK, tag) && tag != "${"+VersionVariable+"}" {
				problems = append(problems, fmt.Sprintf("line %d: image hoist-ci/hoist:%s (want :%s, or :${%s} in a GitLab component)", n, tag, Version, VersionVariable))
			}
		}
		if azure {
			for _, m := range azureRefPattern.FindAllStringSubmatch(line, -1) {
				if ref := m[1]; ref != "v"+Version {
					problems = append(problems, fmt.Sprintf("line %d: Azure repository ref refs/tags/%s (want refs/tags/v%s)", n, ref, Version))
				}
			}
		}
	}
	return problems
}

func TestVersionRefProblems(t *testing.T) {
	tests := []struct {
		line  string
		azure bool
		bad   bool
	}{
		{line: "- uses: hoist-ci/hoist/actions/retag@v0", bad: false},
		{line: "- uses: hoist-ci/hoist/actions/retag@v" + Version, bad: false},
		{line: "- uses: hoist-ci/hoist/actions/build-push/host@v0", bad: false},
		{line: "- uses: hoist-ci/hoist@v0", bad: false},
		{line: "uses: hoist-ci/hoist/.github/workflows/deliver.yml@v0", bad: false},
		{line: "- component: $CI_SERVER_FQDN/hoist-ci/hoist/retag@" + Version, bad: false},
		{line: "name: ghcr.io/hoist-ci/hoist:" + Version, bad: false},
		{line: "`ghcr.io/hoist-ci/hoist:" + Version + "`.", bad: false},
		{line: "default: ghcr.io/hoist-ci/hoist:${HOIST_VERSION}", bad: false},
		{line: "ref: refs/tags/v" + Version, azure: true, bad: false},
		{line: "ref: refs/tags/v1.4.2", azure: false, bad: false},
		{line: "- uses: hoist-ci/hoist@v1", bad: true},
		{line: "- uses: hoist-ci/hoist/actions/build-push@v1", bad: true},
		{line: "- uses: hoist-ci/hoist/actions/build-push@main", bad: true},
		{line: "- uses: hoist-ci/hoist/actions/retag@0.2.0", bad: true},
		{line: "- component: $CI_SERVER_FQDN/hoist-ci/hoist/build-push@1", bad: true},
		{line: "- component: $CI_SERVER_FQDN/hoist-ci/hoist/build-push@v" + Version, bad: true},
		{line: "- component: $CI_SERVER_FQDN/hoist-ci/hoist/retag@0.1.0", bad: true},
		{line: "name: ghcr.io/hoist-ci/hoist:1", bad: true},
		{line: "name: ghcr.io/hoist-ci/hoist:latest", bad: true},
		{line: "ref: refs/tags/v0.1.0", azure: true, bad: true},
		{line: "the image ghcr.io/hoist-ci/hoist:<x.y.z> of release v<x.y.z>", bad: false},
		{line: "`uses: hoist-ci/hoist/actions/<tool>@v$VERSION`", bad: false},
		{line: "`component: $CI_SERVER_FQDN/hoist-ci/hoist/<tool>@$VERSION`", bad: false},
		{line: "ghcr.io/hoist-ci/hoist:<version>", bad: true},
		{line: "ghcr.io/hoist-ci/hoist:$TAG", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			problems := versionRefProblems(tt.line, tt.azure)
			if tt.bad {
				require.NotEmpty(t, problems)
			} else {
				require.Empty(t, problems)
			}
		})
	}
}

// TestVersionRefsFollowTheScheme reads every doc, example, template, action
// and workflow for references to hoist's actions, components, workflows,
// image and Azure templates, and fails on any that mixes schemes (@v1, @1,
// :1, an older release).
func TestVersionRefsFollowTheScheme(t *testing.T) {
	var files []string
	for _, dir := range []string{"docs", "examples", "templates", "actions", ".github"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch ext := filepath.Ext(p); {
			case d.IsDir() && d.Name() == "testdata":
				return filepath.SkipDir
			case !d.IsDir() && (ext == ".md" || ext == ".yml" || ext == ".yaml"):
				files = append(files, p)
			}
			return nil
		})
		require.NoError(t, err)
	}
	for _, name := range []string{"README.md", "action.yml", ".gitlab-ci.yml"} {
		if _, err := os.Stat(filepath.Join(repoRoot, name)); err == nil {
			files = append(files, filepath.Join(repoRoot, name))
		}
	}
	require.Greater(t, len(files), 20, "the walk found too few files")
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		rel, err := filepath.Rel(repoRoot, f)
		require.NoError(t, err)
		azure := strings.Contains(filepath.ToSlash(rel), "azure")
		for _, p := range versionRefProblems(string(data), azure) {
			t.Errorf("%s %s", rel, p)
		}
		if githubRefPattern.Match(data) || imageRefPattern.Match(data) {
			checked++
		}
	}
	require.Greater(t, checked, 10, "too few files name a hoist version: is the pattern still right?")
}

func TestReleaseVersion(t *testing.T) {
	for tag, want := range map[string]string{"v0.2.0": "0.2.0", "v1.14.3": "1.14.3"} {
		got, err := ReleaseVersion(tag)
		require.NoError(t, err, tag)
		require.Equal(t, want, got)
	}
	for _, tag := range []string{"0.2.0", "v0.2", "v0", "v0.2.0-rc.1", "v01.2.3", "release-0.2.0", ""} {
		_, err := ReleaseVersion(tag)
		require.ErrorContains(t, err, "is not v<major>.<minor>.<patch>", tag)
	}
	require.Equal(t, "v0", MajorTag())
}
