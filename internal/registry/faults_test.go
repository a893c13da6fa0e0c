package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// cutOnce answers the first GET of a path matching match with half of the
// registry's answer and a connection reset; later requests pass. It
// records the Range header of every request to such paths.
type cutOnce struct {
	mu     sync.Mutex
	match  func(path string) bool
	cut    bool
	ranges []string
	// ranged serves byte ranges (Accept-Ranges, 206) for matching paths.
	ranged bool
	// change alters the content after the cut (a tag moved meanwhile).
	change bool
}

func (c *cutOnce) intercept(reg http.Handler) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !c.match(r.URL.Path) {
			return false
		}
		rec := &recorder{header: http.Header{}}
		whole := r.Clone(r.Context())
		whole.Header.Del("Range")
		reg.ServeHTTP(rec, whole)
		body := rec.body.Bytes()
		c.mu.Lock()
		c.ranges = append(c.ranges, r.Header.Get("Range"))
		first := !c.cut
		c.cut = true
		c.mu.Unlock()
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if !first && c.change {
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
		}
		if c.ranged {
			w.Header().Set("Accept-Ranges", "bytes")
		}
		if first {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(rec.status)
			_, _ = w.Write(body[:len(body)/2])
			resetConnection(w)
			return true
		}
		if rg := r.Header.Get("Range"); rg != "" && c.ranged {
			var start int
			_, err := fmt.Sscanf(rg, "bytes=%d-", &start)
			if err != nil || start > len(body) {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return true
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
			w.Header().Set("Content-Length", fmt.Sprint(len(body)-start))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(body[start:])
			return true
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
		return true
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func TestResetMidBodyIsResumed(t *testing.T) {
	isBlob := func(p string) bool { return strings.Contains(p, "/blobs/sha256:") }
	isManifest := func(p string) bool { return strings.Contains(p, "/manifests/") }
	tests := []struct {
		name       string
		cut        *cutOnce
		wantRanges []string // Range headers of the matching GETs
		wantLog    string
		wantErr    string
	}{
		{"blob, the registry serves ranges", &cutOnce{match: isBlob, ranged: true}, []string{"", "bytes=*-"},
			"with a Range request (attempt 2/5)", ""},
		{"blob, no ranges: read again, the start skipped", &cutOnce{match: isBlob}, []string{"", ""},
			"reading it again from the start (no byte ranges here) (attempt 2/5)", ""},
		// A manifest by tag (or a tag list) may change between two answers:
		// it is read again whole, never continued from another answer.
		{"manifest by tag: read again whole", &cutOnce{match: isManifest}, []string{"", ""}, "after a connection reset in the body (attempt 2/5)", ""},
		{"manifest by tag changed meanwhile: the new answer whole", &cutOnce{match: isManifest, change: true}, []string{"", ""}, "after a connection reset in the body (attempt 2/5)", ""},
		{"blob changed meanwhile", &cutOnce{match: isBlob, change: true}, []string{"", ""}, "",
			"the content changed while it was read (Docker-Content-Digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
			cut := tt.cut
			var intercept func(w http.ResponseWriter, r *http.Request) bool
			host := serve(t, func(w http.ResponseWriter, r *http.Request) bool { return intercept(w, r) })
			// serve's own registry is not reg: route everything to reg.
			intercept = func(w http.ResponseWriter, r *http.Request) bool {
				if cut.intercept(reg)(w, r) {
					return true
				}
				reg.ServeHTTP(w, r)
				return true
			}
			img, err := random.Image(8192, 1)
			require.NoError(t, err)
			testrig.PushImage(t, img, host+"/team/app:1")

			logger, logs := newLogger()
			c := newClient(t, registry.Options{Insecure: []string{host}, Retry: fast, Log: logger})
			r := ref(t, c, host+"/team/app:1")
			got, err := remote.Image(r, c.RemoteOptions(t.Context())...)
			if err == nil {
				var layers []interface{ Compressed() (io.ReadCloser, error) }
				ls, lerr := got.Layers()
				require.NoError(t, lerr)
				for _, l := range ls {
					layers = append(layers, l)
				}
				for _, l := range layers {
					rc, cerr := l.Compressed()
					require.NoError(t, cerr)
					_, err = io.Copy(io.Discard, rc) // verified against the digest on close
					if err == nil {
						err = rc.Close()
					}
				}
			}
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			cut.mu.Lock()
			ranges := cut.ranges
			cut.mu.Unlock()
			require.Len(t, ranges, len(tt.wantRanges))
			for i, want := range tt.wantRanges {
				if want == "bytes=*-" {
					require.Regexp(t, `^bytes=[1-9][0-9]*-$`, ranges[i])
					continue
				}
				require.Equal(t, want, ranges[i])
			}
			if tt.cut.match("/blobs/sha256:") {
				require.Contains(t, logs.String(), "after a connection reset at byte ")
			}
			require.Contains(t, logs.String(), tt.wantLog)
			gotDigest, err := got.Digest()
			require.NoError(t, err)
			wantDigest, err := img.Digest()
			require.NoError(t, err)
			require.Equal(t, wantDigest, gotDigest)
		})
	}
}

// A registry that is down for a moment (restarting) answers "connection
// refused": that is retried like a reset, up to the attempts.
func TestConnectionRefusedIsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host := l.Addr().String()
	require.NoError(t, l.Close())

	t.Run("the registry comes back in time", func(t *testing.T) {
		started := make(chan struct{})
		go func() {
			defer close(started)
			time.Sleep(150 * time.Millisecond)
			l, err := net.Listen("tcp", host)
			if err != nil {
				t.Errorf("listening again on %s: %v", host, err)
				return
			}
			srv := &http.Server{Handler: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
			t.Cleanup(func() { _ = srv.Close() })
			go func() { _ = srv.Serve(l) }()
		}()
		logger, logs := newLogger()
		c := newClient(t, registry.Options{Insecure: []string{host}, Log: logger,
			Retry: registry.Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond}})
		img, err := random.Image(64, 1)
		require.NoError(t, err)
		r := ref(t, c, host+"/team/app:1")
		require.NoError(t, remote.Write(r, img, c.RemoteOptions(t.Context(), r.Context().Registry)...))
		<-started
		require.Contains(t, logs.String(), "after a refused connection (attempt 2/5)")
	})

	t.Run("the registry stays down: the stated attempts, then a clear error", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		down := l.Addr().String()
		require.NoError(t, l.Close())
		logger, logs := newLogger()
		c := newClient(t, registry.Options{Log: logger, Retry: fast, Insecure: []string{down}})
		_, err = remote.Head(ref(t, c, down+"/team/app:1"), c.RemoteOptions(t.Context())...)
		require.ErrorContains(t, err, "giving up after 5 attempts")
		require.ErrorContains(t, err, "connection refused")
		// https and http are tried side by side for an insecure host: 4 retries each.
		require.Equal(t, 8, strings.Count(logs.String(), "after a refused connection"), logs.String())
		require.Contains(t, logs.String(), "(attempt 5/5)")
	})
}

// TestTagListChangedMidReadIsReadAgainWhole: the tag list of a repository
// another job is pushing to grows between a broken answer and the retry
// (seen in test/faults): the retry reads the new list whole instead of
// failing on a resume of content that changed.
func TestTagListChangedMidReadIsReadAgainWhole(t *testing.T) {
	var calls atomic.Int32
	host := serve(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/tags/list") {
			return false
		}
		first := `{"name":"team/app","tags":["1.0.0","1.1.0"]}`
		if calls.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(first)))
			w.Header().Set("Accept-Ranges", "bytes")
			_, _ = w.Write([]byte(first[:len(first)/2]))
			resetConnection(w)
			return true
		}
		_, _ = w.Write([]byte(`{"name":"team/app","tags":["1.0.0","1.1.0","1.2.0"]}`))
		return true
	})
	logger, logs := newLogger()
	c := newClient(t, registry.Options{Insecure: []string{host}, Retry: fast, Log: logger})
	repo, err := name.NewRepository(host+"/team/app", name.Insecure)
	require.NoError(t, err)
	tags, err := remote.List(repo, c.RemoteOptions(t.Context())...)
	require.NoError(t, err)
	require.Equal(t, []string{"1.0.0", "1.1.0", "1.2.0"}, tags)
	require.EqualValues(t, 2, calls.Load())
	require.Contains(t, logs.String(), "in the body (attempt 2/5)")
}

// resetConnection sends what w holds and resets the connection: the
// client sees a reset in the middle of the body.
func resetConnection(w http.ResponseWriter) {
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
	}
}
