package testrig_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

func TestRandomFaultProxyInjectsEachKind(t *testing.T) {
	target := testrig.InProcessRegistry(t)
	layer, err := random.Layer(4096, "application/octet-stream")
	require.NoError(t, err)
	repo := parseRepo(t, target+"/team/app")
	require.NoError(t, remote.WriteLayer(repo, layer))
	digest, err := layer.Digest()
	require.NoError(t, err)
	want, err := layer.Compressed()
	require.NoError(t, err)
	wantBytes, err := io.ReadAll(want)
	require.NoError(t, err)
	blobPath := "/v2/team/app/blobs/" + digest.String()

	// Fresh connections: net/http silently retries a GET reset on a reused one.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tests := []struct {
		fault  testrig.Fault
		method string
		check  func(t *testing.T, resp *http.Response, err error)
		counts testrig.Fault
	}{
		{testrig.Fault503, http.MethodGet, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		}, testrig.Fault503},
		{testrig.Fault429, http.MethodGet, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			require.Equal(t, "2", resp.Header.Get("Retry-After"))
		}, testrig.Fault429},
		{testrig.FaultResetBeforeHeaders, http.MethodGet, func(t *testing.T, _ *http.Response, err error) {
			require.ErrorContains(t, err, "connection reset")
		}, testrig.FaultResetBeforeHeaders},
		{testrig.FaultResetMidBody, http.MethodGet, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got, rerr := io.ReadAll(resp.Body)
			require.Error(t, rerr)
			require.Less(t, len(got), len(wantBytes))
			require.True(t, bytes.HasPrefix(wantBytes, got), "the bytes before the cut are the blob's")
		}, testrig.FaultResetMidBody},
		{testrig.FaultResetMidBody, http.MethodHead, func(t *testing.T, _ *http.Response, err error) {
			require.Error(t, err, "a HEAD has no body: reset after the registry answered")
		}, testrig.FaultResetAfterUpstream},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault)+" "+tt.method, func(t *testing.T) {
			proxy := testrig.RandomFaultProxy(t, target, testrig.FaultOptions{Rate: 1, Seed: 1, Kinds: []testrig.Fault{tt.fault}, RetryAfter: 2 * time.Second})
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+proxy.Host+blobPath, nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			if resp != nil {
				defer resp.Body.Close()
			}
			tt.check(t, resp, err)
			require.Equal(t, map[testrig.Fault]int{tt.counts: 1}, proxy.FaultCounts())
			require.Equal(t, 1, proxy.Requests())
		})
	}
}

func TestRandomFaultProxyRate(t *testing.T) {
	proxy := testrig.RandomFaultProxy(t, testrig.InProcessRegistry(t), testrig.FaultOptions{Rate: 0.1, Seed: 42, Kinds: []testrig.Fault{testrig.Fault503}})
	for range 400 {
		resp, err := http.Get("http://" + proxy.Host + "/v2/")
		require.NoError(t, err)
		resp.Body.Close()
	}
	require.InDelta(t, 40, proxy.Faults(), 20, proxy.Report())
	require.Contains(t, proxy.Report(), "400 requests")
}

func parseRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s, name.Insecure)
	require.NoError(t, err)
	return r
}
