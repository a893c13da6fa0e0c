package retag_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/components/retag"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// These tests run against the real CNCF distribution registry (Debian's
// docker-registry), started per test by testrig.

const canary = "CANARY-7f3a9c-not-for-logs"

func digestsOf(t *testing.T, repo string, auth authn.Authenticator, tags ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tag := range tags {
		ref, err := name.ParseReference(repo+":"+tag, name.Insecure)
		require.NoError(t, err)
		d, err := remote.Head(ref, remote.WithAuth(auth))
		require.NoError(t, err, tag)
		out[tag] = d.Digest.String()
	}
	return out
}

func TestRealRegistryWithHtpasswdAuth(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "s3cret-pass"}})
	auth := &authn.Basic{Username: "ci", Password: "s3cret-pass"}
	repo := reg.Host + "/team/app"
	desc := testrig.PushRandomImage(t, repo+":abc1234", remote.WithAuth(auth))

	client, err := registry.New(registry.Options{Username: "ci", Password: "s3cret-pass", Insecure: []string{reg.Host}})
	require.NoError(t, err)
	res, err := retag.Run(context.Background(), retag.Options{
		Source: repo + ":abc1234", Tags: []string{"v1.4.2"}, SemverAliases: true, Registry: client,
	})
	require.NoError(t, err)
	require.Len(t, res.Tags, 5) // v1.4.2 1.4.2 1.4 1 latest
	for tag, d := range digestsOf(t, repo, auth, "v1.4.2", "1.4.2", "1.4", "1", "latest") {
		require.Equal(t, desc.Digest.String(), d, tag)
	}
}

func TestRealRegistryWrongPasswordIsExplainedAndMasked(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "s3cret-pass"}})
	repo := reg.Host + "/team/app"
	testrig.PushRandomImage(t, repo+":abc1234", remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret-pass"}))

	client, err := registry.New(registry.Options{Username: "ci", Password: canary, Insecure: []string{reg.Host}})
	require.NoError(t, err)
	_, err = retag.Run(context.Background(), retag.Options{Source: repo + ":abc1234", Tags: []string{"1.0.0"}, Registry: client})
	require.Error(t, err)
	require.NotContains(t, err.Error(), canary)
	require.Contains(t, err.Error(), reg.Host)
	require.Contains(t, err.Error(), "password")

	anon, err := registry.New(registry.Options{Insecure: []string{reg.Host}})
	require.NoError(t, err)
	_, err = retag.Run(context.Background(), retag.Options{Source: repo + ":abc1234", Tags: []string{"1.0.0"}, Registry: anon})
	require.ErrorContains(t, err, "username")
}

func TestRealRegistryThroughFaultyProxy(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	proxy := testrig.FaultProxy(t, reg.Host, 3)
	desc := testrig.PushRandomIndex(t, reg.Host+"/team/app:abc1234")

	client, err := registry.New(registry.Options{Insecure: []string{proxy.Host}})
	require.NoError(t, err)
	res, err := retag.Run(context.Background(), retag.Options{
		Source: proxy.Host + "/team/app:abc1234", Tags: []string{"v1.4.2"}, SemverAliases: true,
		Destinations: []string{proxy.Host + "/prod/app"}, Registry: client,
	})
	require.NoError(t, err)
	require.Equal(t, desc.Digest.String(), res.Digest)
	require.Positive(t, proxy.Faults(), "the proxy injected faults")
	for tag, d := range digestsOf(t, reg.Host+"/prod/app", authn.Anonymous, "v1.4.2", "1.4.2", "1.4", "1", "latest") {
		require.Equal(t, desc.Digest.String(), d, tag)
	}
}

// The cost contract, counted where a registry operator would see it:
// at a proxy in front of the real registry, with token-less htpasswd auth.
func TestRealRegistryCostThroughCountingProxy(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "s3cret-pass"}})
	proxy := testrig.FaultProxy(t, reg.Host, 0)
	repo := proxy.Host + "/team/app"
	desc := testrig.PushRandomImage(t, reg.Host+"/team/app:abc1234", remote.WithAuth(reg.Auth()))
	proxy.Counter.Reset()

	client, err := registry.New(registry.Options{Username: "ci", Password: "s3cret-pass", Insecure: []string{proxy.Host}})
	require.NoError(t, err)
	const n = 6
	tags := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	res, err := retag.Run(context.Background(), retag.Options{Source: repo + ":abc1234", Tags: tags, Latest: retag.LatestFalse, Registry: client})
	require.NoError(t, err)
	require.Len(t, res.Tags, n)

	counts := proxy.Counter.Snapshot()
	require.Equal(t, 1, counts.Get(http.MethodGet, testrig.KindManifest), "one manifest read: %v", counts)
	require.Zero(t, counts.Get(http.MethodHead, testrig.KindManifest), "%v", counts)
	require.Equal(t, n, counts.Get(http.MethodPut, testrig.KindManifest), "one manifest write per tag: %v", counts)
	require.Zero(t, counts.Blobs(), "no blob traffic: %v", counts)
	for tag, d := range digestsOf(t, reg.Host+"/team/app", reg.Auth(), tags...) {
		require.Equal(t, desc.Digest.String(), d, tag)
	}
}

// A promotion copies only what the destination lacks: promoting the same
// image again moves no blob, and a second image sharing its layers uploads
// only its own.
func TestPromotionCopiesOnlyMissingBlobs(t *testing.T) {
	src := testrig.Registry(t, testrig.RegistryOptions{})
	dst := testrig.Registry(t, testrig.RegistryOptions{})
	proxy := testrig.FaultProxy(t, dst.Host, 0)
	desc := testrig.PushRandomIndex(t, src.Host+"/team/app:1.4.2")
	client, err := registry.New(registry.Options{Insecure: []string{src.Host, proxy.Host}})
	require.NoError(t, err)
	promote := func() testrig.Counts {
		proxy.Counter.Reset()
		res, err := retag.Run(context.Background(), retag.Options{
			Source: src.Host + "/team/app:1.4.2", Destinations: []string{proxy.Host + "/prod/app"},
			Tags: []string{"1.4.2"}, Latest: retag.LatestFalse, Registry: client,
		})
		require.NoError(t, err)
		require.Equal(t, desc.Digest.String(), res.Digest)
		return proxy.Counter.Snapshot()
	}
	first := promote()
	require.Positive(t, first.Kind(testrig.KindBlobUpload), "the first promotion uploads the blobs: %v", first)
	second := promote()
	require.Zero(t, second.Kind(testrig.KindBlobUpload), "nothing is uploaded twice: %v", second)
	require.Zero(t, second.Get(http.MethodGet, testrig.KindBlob), "no blob is read: %v", second)
	for tag, d := range digestsOf(t, dst.Host+"/prod/app", authn.Anonymous, "1.4.2") {
		require.Equal(t, desc.Digest.String(), d, tag)
	}
}

// TestRealRegistrySourceNeverBuilt: distribution's MANIFEST_UNKNOWN (and
// NAME_UNKNOWN for a repository never pushed) become the plain question.
func TestRealRegistrySourceNeverBuilt(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	repo := reg.Host + "/team/app"
	testrig.PushRandomImage(t, repo+":abc1234")
	client, err := registry.New(registry.Options{Insecure: []string{reg.Host}})
	require.NoError(t, err)
	for _, source := range []string{repo + ":def5678", reg.Host + "/team/never:def5678"} {
		res, err := retag.Run(context.Background(), retag.Options{Source: source, Tags: []string{"v1.4.2"}, Registry: client})
		require.Error(t, err)
		require.Contains(t, err.Error(), `input "source": `+source+" does not exist — was this commit built?")
		require.NotContains(t, err.Error(), "MANIFEST_UNKNOWN")
		require.Empty(t, res.Tags)
	}
}
