package buildpush

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestVersionAndRef: the version tag a build names and the reference a
// GitOps bump pins, on each kind of pipeline.
func TestVersionAndRef(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name    string
		git     gitmeta.Context
		prefix  string
		tags    []string
		version string
		repo    string
	}{
		{"git tag: semver without the v", gitmeta.Context{Event: gitmeta.EventTag, Tag: "v1.4.2", SHA: sha}, "", nil, "1.4.2", "/ref/app"},
		{"merge request", gitmeta.Context{Event: gitmeta.EventPullRequest, PullRequest: 7, SHA: sha}, "mr", nil, "mr-7", "/ref/app"},
		{"default branch: the short SHA", gitmeta.Context{Event: gitmeta.EventPush, Branch: "main", DefaultBranch: "main", SHA: sha, ShortSHALength: 8}, "", nil, "01234567", "/ref/app"},
		{"explicit tags: the first one's tag", gitmeta.Context{Event: gitmeta.EventTag, Tag: "v1.4.2", SHA: sha}, "", []string{"/ref/other:stable", "/ref/app:v9"}, "stable", "/ref/other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := e.opts(dir)
			o.Image = e.host + "/ref/app"
			for _, tag := range tc.tags {
				o.Tags = append(o.Tags, e.host+tag)
			}
			o.Git, o.RequestPrefix = tc.git, tc.prefix
			o.RefFile = filepath.Join(t.TempDir(), "ref")
			res, err := Run(context.Background(), o)
			require.NoError(t, err)
			require.Equal(t, tc.version, res.Version)
			want := e.host + tc.repo + ":" + tc.version + "@" + res.Digest
			require.Equal(t, want, res.Ref)
			require.Equal(t, tc.version, res.Outputs()["version"])
			require.Equal(t, want, res.Outputs()["ref"])
			data, err := os.ReadFile(o.RefFile)
			require.NoError(t, err)
			require.Equal(t, want+"\n", string(data))
			// The ref names a tag the registry holds, at that digest.
			require.Equal(t, res.Digest, digestOf(t, e.host+tc.repo+":"+tc.version))
		})
	}
}

// TestPushSkipsATagAlreadyAtTheDigest: a rerun of the same build writes no
// manifest, so no tag moves (and an immutable-tag registry has nothing to
// refuse); a tag at another digest is written.
func TestPushSkipsATagAlreadyAtTheDigest(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	o := e.opts(dir, e.host+"/same/app:v1", e.host+"/same/app:latest")
	epoch := time.Unix(1700000000, 0) // SOURCE_DATE_EPOCH: a rerun builds the same image
	o.Epoch = &epoch
	first, err := Run(context.Background(), o)
	require.NoError(t, err)
	testrig.PushRandomImage(t, e.host+"/same/app:latest") // latest moved elsewhere meanwhile

	var logs *testrig.Logs
	o.Log, logs = testrig.NewLogger(slog.LevelInfo)
	e.counter.Reset()
	second, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, first.Digest, second.Digest)
	counts := e.counter.Snapshot()
	require.Equal(t, 1, counts.Get(http.MethodPut, testrig.KindManifest), "only latest, which held another digest, is written: %v", counts)
	require.Contains(t, logs.String(), "already at "+first.Digest)
	require.Equal(t, first.Digest, digestOf(t, e.host+"/same/app:latest"))
	require.Equal(t, []string{e.host + "/same/app:v1", e.host + "/same/app:latest"}, second.Tags, "the tags output still lists every tag that holds the image")
}

func digestOf(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Head(r)
	require.NoError(t, err)
	return d.Digest.String()
}
