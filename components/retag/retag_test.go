package retag_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/components/retag"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// env is one test's registry and a client that counts its requests.
type env struct {
	host    string
	counter *testrig.Counter
	client  *registry.Client
}

func newEnv(t *testing.T, hosts ...string) env {
	t.Helper()
	host := testrig.InProcessRegistry(t)
	counter := testrig.NewCounter(http.DefaultTransport)
	client, err := registry.New(registry.Options{
		Insecure:  append([]string{host}, hosts...),
		Transport: counter,
		UserAgent: "hoist/test",
	})
	require.NoError(t, err)
	return env{host: host, counter: counter, client: client}
}

func (e env) tags(t *testing.T, repo string) map[string]string {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	require.NoError(t, err)
	tags, err := remote.List(r)
	require.NoError(t, err)
	out := map[string]string{}
	for _, tag := range tags {
		d, err := remote.Head(r.Tag(tag))
		require.NoError(t, err)
		out[tag] = d.Digest.String()
	}
	return out
}

func TestSameRepositoryCostsOneReadAndOneWritePerTag(t *testing.T) {
	e := newEnv(t)
	src := e.host + "/team/app:abc1234"
	desc := testrig.PushRandomImage(t, src)
	e.counter.Reset()

	res, err := retag.Run(context.Background(), retag.Options{
		Source:        src,
		Tags:          []string{"v1.4.2"},
		SemverAliases: true,
		Latest:        retag.LatestFalse,
		Registry:      e.client,
	})
	require.NoError(t, err)
	repo := e.host + "/team/app"
	require.Equal(t, desc.Digest.String(), res.Digest)
	require.Equal(t, repo+"@"+res.Digest, res.Image)
	require.Equal(t, []string{repo + ":v1.4.2", repo + ":1.4.2", repo + ":1.4", repo + ":1"}, res.Tags)

	counts := e.counter.Snapshot()
	require.Equal(t, 1, counts.Get(http.MethodGet, testrig.KindManifest), "manifest reads: %v", counts)
	require.Equal(t, 0, counts.Get(http.MethodHead, testrig.KindManifest), "manifest HEADs: %v", counts)
	require.Equal(t, 4, counts.Get(http.MethodPut, testrig.KindManifest), "manifest writes: %v", counts)
	require.Zero(t, counts.Blobs(), "blob requests: %v", counts)

	got := e.tags(t, repo)
	for _, tag := range []string{"abc1234", "v1.4.2", "1.4.2", "1.4", "1"} {
		require.Equal(t, desc.Digest.String(), got[tag], tag)
	}
	require.NotContains(t, got, "latest")
}

func TestTagPipelineDefaults(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/team/app"
	desc := testrig.PushRandomImage(t, repo+":3f9c2e1")
	res, err := retag.Run(context.Background(), retag.Options{
		DefaultRepository: repo,
		SemverAliases:     true,
		Git:               gitmeta.Context{Event: gitmeta.EventTag, Tag: "v2.0.0", SHA: "3f9c2e17a0b4c5d6", ShortSHALength: 7},
		Registry:          e.client,
	})
	require.NoError(t, err)
	require.Equal(t, []string{repo + ":v2.0.0", repo + ":2.0.0", repo + ":2.0", repo + ":2", repo + ":latest"}, res.Tags)
	require.Equal(t, desc.Digest.String(), e.tags(t, repo)["latest"])
}

func TestLatestAutoNeverMovesBackwards(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/team/app"
	newer := testrig.PushRandomImage(t, repo+":2.0.0")
	_, err := retag.Run(context.Background(), retag.Options{Source: repo + ":2.0.0", Tags: []string{"latest"}, Registry: e.client})
	require.NoError(t, err)
	testrig.PushRandomImage(t, repo+":backport")

	res, err := retag.Run(context.Background(), retag.Options{
		Source: repo + ":backport", Tags: []string{"v1.9.1"}, SemverAliases: true, Latest: retag.LatestAuto, Registry: e.client,
	})
	require.NoError(t, err)
	require.NotContains(t, res.Tags, repo+":latest")
	require.Equal(t, newer.Digest.String(), e.tags(t, repo)["latest"])

	pre, err := retag.Run(context.Background(), retag.Options{
		Source: repo + ":backport", Tags: []string{"v3.0.0-rc.1"}, SemverAliases: true, Registry: e.client,
	})
	require.NoError(t, err)
	require.Equal(t, []string{repo + ":v3.0.0-rc.1", repo + ":3.0.0-rc.1"}, pre.Tags, "a pre-release writes only its own tags")
}

func TestBackportMovesOnlyItsOwnLine(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/team/app"
	release := testrig.PushRandomImage(t, repo+":release")
	backport := testrig.PushRandomImage(t, repo+":backport")
	_, err := retag.Run(context.Background(), retag.Options{Source: repo + ":release", Tags: []string{"v1.4.2"}, SemverAliases: true, Registry: e.client})
	require.NoError(t, err)

	res, err := retag.Run(context.Background(), retag.Options{Source: repo + ":backport", Tags: []string{"v1.3.9"}, SemverAliases: true, Registry: e.client})
	require.NoError(t, err)
	require.Equal(t, []string{repo + ":v1.3.9", repo + ":1.3.9", repo + ":1.3"}, res.Tags)
	got := e.tags(t, repo)
	require.Equal(t, release.Digest.String(), got["1"], "1 stays on 1.4.2")
	require.Equal(t, release.Digest.String(), got["latest"], "latest stays on 1.4.2")
	require.Equal(t, backport.Digest.String(), got["1.3"])
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/team/app"
	desc := testrig.PushRandomImage(t, repo+":abc1234")
	e.counter.Reset()
	res, err := retag.Run(context.Background(), retag.Options{
		Source: repo + ":abc1234", Tags: []string{"v1.4.2"}, SemverAliases: true, Latest: retag.LatestTrue, DryRun: true, Registry: e.client,
	})
	require.NoError(t, err)
	require.True(t, res.DryRun)
	require.Equal(t, desc.Digest.String(), res.Digest)
	require.Len(t, res.Tags, 5)
	require.Zero(t, e.counter.Snapshot().Get(http.MethodPut, testrig.KindManifest))
	require.Equal(t, map[string]string{"abc1234": desc.Digest.String()}, e.tags(t, repo))
}

func TestExpectDigestRefusesAnotherImage(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/team/app"
	testrig.PushRandomImage(t, repo+":abc1234")
	_, err := retag.Run(context.Background(), retag.Options{
		Source: repo + ":abc1234", Tags: []string{"1.0.0"}, ExpectDigest: "sha256:" + strings.Repeat("0", 64), Registry: e.client,
	})
	require.ErrorContains(t, err, "expect-digest")
	require.Len(t, e.tags(t, repo), 1, "nothing written")
}

func TestPromoteIndexByteForByte(t *testing.T) {
	e := newEnv(t)
	other := testrig.InProcessRegistry(t)
	client, err := registry.New(registry.Options{Insecure: []string{e.host, other}})
	require.NoError(t, err)
	src := e.host + "/team/app:1.4.2"
	desc := testrig.PushRandomIndex(t, src)
	srcRaw := rawManifest(t, src)

	for _, dest := range []string{e.host + "/prod/app", other + "/prod/app"} {
		res, err := retag.Run(context.Background(), retag.Options{
			Source: src, Destinations: []string{dest}, Tags: []string{"1.4.2", "stable"}, Latest: retag.LatestFalse, Registry: client,
		})
		require.NoError(t, err, dest)
		require.Equal(t, []string{dest + ":1.4.2", dest + ":stable"}, res.Tags)
		require.Equal(t, dest+"@"+desc.Digest.String(), res.Image)
		require.Equal(t, srcRaw, rawManifest(t, dest+":stable"), "index copied byte for byte")
		ref, err := name.ParseReference(dest+":1.4.2", name.Insecure)
		require.NoError(t, err)
		idx, err := remote.Index(ref)
		require.NoError(t, err)
		imgs, err := idx.IndexManifest()
		require.NoError(t, err)
		for _, m := range imgs.Manifests {
			img, err := idx.Image(m.Digest)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			for _, l := range layers {
				_, err := l.Compressed() // the blob is really there
				require.NoError(t, err)
			}
		}
	}
}

func rawManifest(t *testing.T, ref string) []byte {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Get(r)
	require.NoError(t, err)
	return d.Manifest
}

// failTag answers 400 to writes of one tag, so a run fails midway.
type failTag struct {
	next http.RoundTripper
	tag  string
}

func (f failTag) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/manifests/"+f.tag) {
		return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Body: http.NoBody, Header: http.Header{}, Request: req}, nil
	}
	return f.next.RoundTrip(req)
}

func TestFailureMidwayNamesWrittenTags(t *testing.T) {
	host := testrig.InProcessRegistry(t)
	client, err := registry.New(registry.Options{Insecure: []string{host}, Transport: failTag{http.DefaultTransport, "1.4"}})
	require.NoError(t, err)
	repo := host + "/team/app"
	testrig.PushRandomImage(t, repo+":abc1234")
	res, err := retag.Run(context.Background(), retag.Options{
		Source: repo + ":abc1234", Tags: []string{"v1.4.2"}, SemverAliases: true, Latest: retag.LatestFalse, Registry: client,
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "not written "+repo+":1.4")
	require.ElementsMatch(t, []string{repo + ":v1.4.2", repo + ":1.4.2", repo + ":1"}, res.Written)
	for _, tag := range res.Written {
		require.Contains(t, err.Error(), tag)
	}
	require.Empty(t, res.Tags)
	require.Empty(t, res.Outputs()["tags"], "no tags output claims tags after a failed run")
	require.Empty(t, res.Outputs()["image"])
}

func TestBadInputsFailBeforeAnyRequest(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/team/app"
	tests := []struct {
		name string
		opts retag.Options
		want string
	}{
		{"no tags off a tag pipeline", retag.Options{Source: repo + ":x", Git: gitmeta.Context{Event: gitmeta.EventPush, Branch: "main"}}, `set input "tags"`},
		{"no source and no image", retag.Options{Tags: []string{"1"}}, `input "source" is not set`},
		{"no sha for the default source", retag.Options{Image: repo, Tags: []string{"1"}}, "commit SHA is unknown"},
		{"invalid tag", retag.Options{Source: repo + ":x", Tags: []string{"a/b"}}, `input "tags": "a/b" is not a valid image tag`},
		{"destination with a tag", retag.Options{Source: repo + ":x", Tags: []string{"1"}, Destinations: []string{e.host + "/prod/app:1"}}, `input "destination"`},
		{"bad latest", retag.Options{Source: repo + ":x", Tags: []string{"1.0.0"}, Latest: "maybe"}, `"maybe" is not one of auto, true, false`},
		{"bad source", retag.Options{Source: "UPPER/Case:x", Tags: []string{"1"}}, `input "source"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Registry = e.client
			e.counter.Reset()
			_, err := retag.Run(context.Background(), tt.opts)
			require.ErrorContains(t, err, tt.want)
			require.Zero(t, e.counter.Snapshot().Total(), "no request before inputs are valid")
		})
	}
	_, err := retag.Run(context.Background(), retag.Options{Tags: []string{"1"}})
	require.ErrorContains(t, err, "no registry client")
}
