package retag_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/components/retag"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// TestVersionAndRef: the version tag a retag names and the reference a
// GitOps bump pins, in the first target repository.
func TestVersionAndRef(t *testing.T) {
	e := newEnv(t)
	src := e.host + "/team/app:01234567"
	desc := testrig.PushRandomImage(t, src)
	digest := desc.Digest.String()
	tagPipeline := gitmeta.Context{Event: gitmeta.EventTag, Tag: "v1.4.2", SHA: sha}
	for _, tc := range []struct {
		name    string
		opts    retag.Options
		version string
		repo    string
	}{
		{"git tag: semver without the v", retag.Options{Source: src, SemverAliases: true, Git: tagPipeline}, "1.4.2", "/team/app"},
		{"git tag without aliases: the tag as written", retag.Options{Source: src, Git: tagPipeline}, "v1.4.2", "/team/app"},
		{"git tag that is not semver", retag.Options{Source: src, SemverAliases: true, Git: gitmeta.Context{Event: gitmeta.EventTag, Tag: "spring", SHA: sha}}, "spring", "/team/app"},
		{"explicit tags: the first", retag.Options{Source: src, Tags: []string{"stable", "v2"}, Git: tagPipeline}, "stable", "/team/app"},
		{"promotion: the first destination", retag.Options{Source: src, SemverAliases: true, Destinations: []string{e.host + "/prod/app", e.host + "/dr/app"}, Git: tagPipeline}, "1.4.2", "/prod/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Registry, o.Latest = e.client, retag.LatestFalse
			o.RefFile = filepath.Join(t.TempDir(), "ref")
			res, err := retag.Run(context.Background(), o)
			require.NoError(t, err)
			want := e.host + tc.repo + ":" + tc.version + "@" + digest
			require.Equal(t, tc.version, res.Outputs()["version"])
			require.Equal(t, want, res.Outputs()["ref"])
			data, err := os.ReadFile(o.RefFile)
			require.NoError(t, err)
			require.Equal(t, want+"\n", string(data))
			require.Equal(t, digest, e.tags(t, e.host+tc.repo)[tc.version], "the ref names a tag that holds the image")
		})
	}
	t.Run("a dry run names the ref and writes no file", func(t *testing.T) {
		refFile := filepath.Join(t.TempDir(), "ref")
		res, err := retag.Run(context.Background(), retag.Options{Source: src, Tags: []string{"v9.0.0"}, SemverAliases: true, DryRun: true, Registry: e.client, RefFile: refFile})
		require.NoError(t, err)
		require.Equal(t, "v9.0.0", res.Version)
		require.Equal(t, e.host+"/team/app:v9.0.0@"+digest, res.Ref)
		require.NoFileExists(t, refFile)
	})
}

// TestSourceThatWasNeverBuilt: retag of a commit whose image is not in the
// registry says so, naming the source input and the fix — no raw
// MANIFEST_UNKNOWN — and writes nothing.
func TestSourceThatWasNeverBuilt(t *testing.T) {
	e := newEnv(t)
	testrig.PushRandomImage(t, e.host+"/team/app:abcdef12") // another commit's image
	for _, tc := range []struct {
		name string
		opts retag.Options
		want string
	}{
		{"given", retag.Options{Source: e.host + "/team/app:deadbeef"},
			`input "source": ` + e.host + `/team/app:deadbeef does not exist — was this commit built?`},
		{"defaulted from image and the commit", retag.Options{Image: e.host + "/team/app", Git: gitmeta.Context{Event: gitmeta.EventTag, Tag: "v1.0.0", SHA: sha, ShortSHALength: 8}},
			`input "source" (not set: the image at this commit's short SHA): ` + e.host + `/team/app:01234567 does not exist — was this commit built?`},
		{"a repository that does not exist", retag.Options{Source: e.host + "/team/nothing:01234567"},
			`input "source": ` + e.host + `/team/nothing:01234567 does not exist — was this commit built?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Registry, o.Tags = e.client, []string{"v1.0.0"}
			res, err := retag.Run(context.Background(), o)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), "set source to an image that exists")
			require.NotContains(t, err.Error(), "MANIFEST_UNKNOWN")
			require.True(t, registry.IsNotFound(err), "the registry's error is still wrapped")
			require.Empty(t, res.Tags)
			require.NotContains(t, e.tags(t, e.host+"/team/app"), "v1.0.0")
		})
	}
}
