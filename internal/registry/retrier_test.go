package registry

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bodyRecorder answers status to every request and records each body.
func bodyRecorder(t *testing.T, status int) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
}

// go-containerregistry's bearer transport re-sends the same *http.Request
// after a token refresh; the second send must carry the body again.
func TestOuterResendOfTheSameRequestCarriesTheBody(t *testing.T) {
	url, bodies := bodyRecorder(t, http.StatusCreated)
	host := strings.TrimPrefix(url, "http://")
	// Fresh connections: net/http itself rewinds a body only on a reused one.
	c, err := newClient(Options{Insecure: []string{host}, Transport: &http.Transport{DisableKeepAlives: true}}, "")
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url+"/v2/app/manifests/1", bytes.NewBufferString(`{"manifest":1}`))
	require.NoError(t, err)
	for range 2 {
		resp, err := c.transport.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	require.Equal(t, []string{`{"manifest":1}`, `{"manifest":1}`}, bodies())
}

func TestBodyWithoutGetBodyIsNotRetried(t *testing.T) {
	url, bodies := bodyRecorder(t, http.StatusServiceUnavailable)
	host := strings.TrimPrefix(url, "http://")
	c, err := newClient(Options{Insecure: []string{host}, Retry: Retry{Attempts: 3, Initial: time.Millisecond}}, "")
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, url+"/v2/app/blobs/uploads/1", io.NopCloser(strings.NewReader("stream")))
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	resp, err := c.transport.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, []string{"stream"}, bodies())
}

func TestRetryAfterAndBackoff(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{now.Add(2 * time.Second).Format(http.TimeFormat), 2 * time.Second},
		{"soon", 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, retryAfter(tt.header, now), tt.header)
	}
	r := &retrier{policy: Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond}}
	for attempt, max := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond, 9: 300 * time.Millisecond} {
		d := r.backoff(attempt)
		require.GreaterOrEqual(t, d, max/2, attempt)
		require.LessOrEqual(t, d, max, attempt)
	}
}
