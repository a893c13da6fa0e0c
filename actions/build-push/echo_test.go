package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestEchoedCredentialsNeverLeak: a registry that echoes the Authorization
// header back (Basic, or a bearer token it handed out) gets no credential
// into build-push's log, error, outputs or summary, in any encoding.
func TestEchoedCredentialsNeverLeak(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		echo := testrig.EchoServer(t, testrig.EchoOptions{Bearer: bearer})
		dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
		for _, s := range []surface{
			{"cli", map[string]string{}, []string{"--context", dir, "--tags", echo.Host + "/app:v1", "--username", "ci", "--password", canary, "--insecure-registries", echo.Host}},
			{"github", map[string]string{
				"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM",
				"INPUT_CONTEXT": dir, "INPUT_TAGS": echo.Host + "/app:v1", "INPUT_USERNAME": "ci", "INPUT_PASSWORD": canary, "INPUT_INSECURE-REGISTRIES": echo.Host,
			}, nil},
		} {
			code, all := runSurface(t, s)
			require.Equal(t, 1, code, all)
			require.Contains(t, all, "you sent", "the echo reached the error, redacted")
			require.Empty(t, testrig.Leaks(all, []string{"ci"}, canary), "%s bearer=%v:\n%s", s.name, bearer, all)
			require.NotContains(t, all, echo.Token)
			require.Empty(t, outputs(all)["tags"], "no tags output after a failed push")
		}
	}
}

// TestPushRetryIsTheAttemptsUsed: push-retry N makes N+1 attempts of a
// request; unset, the documented default 4 (5 attempts). A failed push
// writes no tags or image output.
func TestPushRetryIsTheAttemptsUsed(t *testing.T) {
	var pings atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := appDir(t, "FROM scratch\nCOPY static/ /srv/\n")
	for _, tt := range []struct {
		retry []string
		want  int32
	}{
		{[]string{"--push-retry", "0"}, 1},
		{[]string{"--push-retry", "2"}, 3},
		{nil, 5},
	} {
		pings.Store(0)
		args := append([]string{"--context", dir, "--tags", host + "/app:v1", "--insecure-registries", host}, tt.retry...)
		code, stdout, stderr := invoke(t, dir, args, map[string]string{})
		require.Equal(t, 1, code, stderr)
		require.Equal(t, tt.want, pings.Load(), "%v: %s", tt.retry, stderr)
		out := outputs(stdout)
		require.Empty(t, out["tags"], "no tags output claims a failed push")
		require.Empty(t, out["image"])
	}
	code, _, stderr := invoke(t, dir, []string{"--context", dir, "--tags", host + "/app:v1", "--push-retry=-1"}, map[string]string{})
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "input push-retry: -1 is negative")
}
