package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/need"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// fast keeps retry delays short in tests.
var fast = registry.Retry{Attempts: 5, Initial: time.Millisecond, Max: 5 * time.Millisecond}

func newLogger() (*slog.Logger, *testrig.Logs) {
	return testrig.NewLogger(slog.LevelDebug)
}

func newClient(t *testing.T, opts registry.Options) *registry.Client {
	t.Helper()
	c, err := registry.New(opts)
	require.NoError(t, err)
	return c
}

func ref(t *testing.T, c *registry.Client, s string) name.Reference {
	t.Helper()
	r, err := c.Ref(s)
	require.NoError(t, err)
	return r
}

// serve starts a loopback server whose handler may intercept requests
// before go-containerregistry's in-process registry answers them.
func serve(t *testing.T, intercept func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if intercept != nil && intercept(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestInsecurePolicy(t *testing.T) {
	host := testrig.InProcessRegistry(t)
	tests := []struct {
		name     string
		insecure []string
		wantErr  string
	}{
		{"listed host:port works over http", []string{host}, ""},
		{"listed with scheme and slash", []string{"http://" + host + "/"}, ""},
		{"listed host without port matches any port", []string{"127.0.0.1"}, ""},
		{"unlisted loopback is refused", nil, "insecure-registries"},
		{"another port listed", []string{"127.0.0.1:1"}, "refusing plain HTTP to " + host},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, registry.Options{Insecure: tt.insecure, Retry: fast})
			r := ref(t, c, host+"/team/app:1")
			img, err := random.Image(64, 1)
			require.NoError(t, err)
			err = remote.Write(r, img, c.RemoteOptions(t.Context(), r.Context().Registry)...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				_, err = remote.Head(r, c.RemoteOptions(t.Context())...)
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			var ie *registry.InsecureError
			require.ErrorAs(t, err, &ie)
			explained := c.Explain(err, r.Context(), registry.Push)
			require.True(t, strings.HasPrefix(explained.Error(), "pushing to "+host+"/team/app: refusing plain HTTP to "+host), explained.Error())
			require.Contains(t, explained.Error(), "insecure-registries: "+host)
		})
	}
}

func TestInsecureSkipsTLSVerificationOnlyForListedHosts(t *testing.T) {
	srv := httptest.NewTLSServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	testrig.PushRandomImage(t, host+"/team/app:1", remote.WithTransport(srv.Client().Transport))

	listed := newClient(t, registry.Options{Insecure: []string{host}, Retry: fast})
	_, err := remote.Head(ref(t, listed, host+"/team/app:1"), listed.RemoteOptions(t.Context())...)
	require.NoError(t, err)

	unlisted := newClient(t, registry.Options{Retry: fast})
	r := ref(t, unlisted, host+"/team/app:1")
	_, err = remote.Head(r, unlisted.RemoteOptions(t.Context())...)
	require.Error(t, err)
	explained := unlisted.Explain(err, r.Context(), registry.Read)
	require.Contains(t, explained.Error(), "cannot verify the TLS certificate of "+host)
	require.Contains(t, explained.Error(), "insecure-registries: "+host)
}

func TestHTTP1(t *testing.T) {
	tests := []struct {
		name      string
		http1     bool
		wantMajor int
	}{
		{"HTTP/2 by default", false, 2},
		{"HTTP/1.1 when asked", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			protos := map[int]int{}
			reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				protos[r.ProtoMajor]++
				mu.Unlock()
				reg.ServeHTTP(w, r)
			}))
			srv.EnableHTTP2 = true
			srv.StartTLS()
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "https://")

			c := newClient(t, registry.Options{HTTP1: tt.http1, Transport: srv.Client().Transport, Retry: fast})
			r := ref(t, c, host+"/team/app:1")
			img, err := random.Image(64, 1)
			require.NoError(t, err)
			require.NoError(t, remote.Write(r, img, c.RemoteOptions(t.Context())...))
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, map[int]int{tt.wantMajor: protos[tt.wantMajor]}, protos)
			require.Positive(t, protos[tt.wantMajor])
		})
	}
}

func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	host := serve(t, func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		return false
	})
	c := newClient(t, registry.Options{Insecure: []string{host}, UserAgent: "hoist/test", Retry: fast})
	testrig.PushRandomImage(t, host+"/team/app:1")
	agents = nil
	_, err := remote.Head(ref(t, c, host+"/team/app:1"), c.RemoteOptions(t.Context())...)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, agents)
	for _, a := range agents {
		require.True(t, strings.HasPrefix(a, "hoist/test"), a)
	}
}

func TestRetriedManifestPutResendsItsBody(t *testing.T) {
	tests := []struct {
		name   string
		fault  func(w http.ResponseWriter)
		reason string
	}{
		{"503", func(w http.ResponseWriter) { http.Error(w, "try later", http.StatusServiceUnavailable) }, "after 503"},
		{"reset", func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
				_ = conn.Close()
			}
		}, "after a connection reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var bodies []int
			host := serve(t, func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				b, err := io.ReadAll(r.Body)
				require.NoError(t, err)
				r.Body = io.NopCloser(bytes.NewReader(b))
				mu.Lock()
				bodies = append(bodies, len(b))
				first := len(bodies) == 1
				mu.Unlock()
				if first {
					tt.fault(w)
					return true
				}
				return false
			})
			logger, logs := newLogger()
			c := newClient(t, registry.Options{Insecure: []string{host}, Retry: fast, Log: logger})
			r := ref(t, c, host+"/team/app:1.4")
			img, err := random.Image(64, 1)
			require.NoError(t, err)
			require.NoError(t, remote.Write(r, img, c.RemoteOptions(t.Context(), r.Context().Registry)...))

			mu.Lock()
			require.Len(t, bodies, 2)
			require.Positive(t, bodies[0])
			require.Equal(t, bodies[0], bodies[1], "the retried PUT carries the whole manifest")
			mu.Unlock()
			want, err := img.Digest()
			require.NoError(t, err)
			got, err := remote.Head(r, c.RemoteOptions(t.Context())...)
			require.NoError(t, err)
			require.Equal(t, want, got.Digest)
			require.Contains(t, logs.String(), "retrying PUT http://"+host+"/v2/team/app/manifests/1.4 "+tt.reason+" (attempt 2/5)")
		})
	}
}

func TestRetriesAreBoundedAndSkip401(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		wantReqs int
	}{
		{"503 retried up to the attempts", http.StatusServiceUnavailable, 3},
		{"429 retried", http.StatusTooManyRequests, 3},
		{"401 not retried", http.StatusUnauthorized, 1},
		{"404 not retried", http.StatusNotFound, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			reqs := 0
			host := serve(t, func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					return false
				}
				mu.Lock()
				reqs++
				mu.Unlock()
				w.WriteHeader(tt.status)
				return true
			})
			logger, logs := newLogger()
			c := newClient(t, registry.Options{Insecure: []string{host}, Log: logger,
				Retry: registry.Retry{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}})
			_, err := remote.Head(ref(t, c, host+"/team/app:1"), c.RemoteOptions(t.Context())...)
			require.Error(t, err)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tt.wantReqs, reqs)
			require.Equal(t, tt.wantReqs-1, strings.Count(logs.String(), "retrying HEAD"))
		})
	}
}

func TestRetriesThroughFaultProxy(t *testing.T) {
	target := testrig.InProcessRegistry(t)
	proxy := testrig.FaultProxy(t, target, 3)
	logger, logs := newLogger()
	c := newClient(t, registry.Options{Insecure: []string{proxy.Host}, Retry: fast, Log: logger})
	r := ref(t, c, proxy.Host+"/team/app:src")
	img, err := random.Image(256, 3)
	require.NoError(t, err)
	opts := append(c.RemoteOptions(t.Context(), r.Context().Registry), remote.WithJobs(1))
	require.NoError(t, remote.Write(r, img, opts...))

	pusher, err := c.Pusher(t.Context(), r.Context().Registry)
	require.NoError(t, err)
	tags := []string{"1.4.2", "1.4", "1", "latest", "stable"}
	for _, tag := range tags {
		require.NoError(t, pusher.Put(t.Context(), r.Context().Tag(tag), img))
	}
	require.Positive(t, proxy.Faults())
	require.Positive(t, proxy.Resets())
	want, err := img.Digest()
	require.NoError(t, err)
	for _, tag := range append(tags, "src") {
		tr, err := name.ParseReference(target+"/team/app:"+tag, name.Insecure)
		require.NoError(t, err)
		d, err := remote.Head(tr)
		require.NoError(t, err, tag)
		require.Equal(t, want, d.Digest, tag)
	}
	require.Contains(t, logs.String(), "after 503 (attempt 2/5)")
	require.Contains(t, logs.String(), "after a connection reset (attempt 2/5)")
}

func TestPusherReusesPingAndToken(t *testing.T) {
	target := testrig.InProcessRegistry(t)
	desc := testrig.PushRandomImage(t, target+"/team/app:src")
	proxy := testrig.FaultProxy(t, target, 0)
	c := newClient(t, registry.Options{Insecure: []string{proxy.Host}, Retry: fast})
	src := ref(t, c, proxy.Host+"/team/app:src")

	puller, err := c.Puller(t.Context())
	require.NoError(t, err)
	got, err := puller.Get(t.Context(), src)
	require.NoError(t, err)
	require.Equal(t, desc.Digest, got.Digest)
	pusher, err := c.Pusher(t.Context(), src.Context().Registry)
	require.NoError(t, err)
	for _, tag := range []string{"a", "b", "c", "d"} {
		require.NoError(t, pusher.Put(t.Context(), src.Context().Tag(tag), got))
	}
	counts := proxy.Counter.Snapshot()
	require.Equal(t, 2, counts.Get(http.MethodGet, testrig.KindPing), "one ping for reads, one for writes: %v", counts)
	require.Equal(t, 1, counts.Get(http.MethodGet, testrig.KindManifest), "%v", counts)
	require.Equal(t, 4, counts.Get(http.MethodPut, testrig.KindManifest), "%v", counts)
	require.Zero(t, counts.Blobs(), "%v", counts)
}

const canary = "CANARY-91b2-never-print"

func TestAuthErrorsAreExplainedNotRetriedAndMasked(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "right-pass"}})
	testrig.PushRandomImage(t, reg.Host+"/team/app:1", reg.RemoteOptions()...)
	repo := reg.Host + "/team/app"

	tests := []struct {
		name       string
		opts       registry.Options
		action     registry.Action
		want       []string
		wantSource string
	}{
		{"wrong password inputs, reading", registry.Options{Username: "ci", Password: canary}, registry.Read,
			[]string{"reading " + repo + ": the registry answered 401 Unauthorized", "credentials for " + reg.Host + " from the username and password inputs were refused", "registry-auth", "DOCKER_AUTH_CONFIG"},
			registry.SourceInputs},
		{"wrong password inputs, pushing", registry.Options{Username: "ci", Password: canary}, registry.Push,
			[]string{"pushing to " + repo, "may push to " + repo, "from the username and password inputs were refused"},
			registry.SourceInputs},
		{"registry-auth refused", registry.Options{RegistryAuth: `{"auths":{"` + reg.Host + `":{"username":"ci","password":"` + canary + `"}}}`}, registry.Read,
			[]string{"from the registry-auth input were refused"}, registry.SourceRegistryAuth},
		{"no credentials", registry.Options{}, registry.Push,
			[]string{"hoist found no credentials for " + reg.Host, "set the username and password inputs"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			counter := testrig.NewCounter(nil)
			tt.opts.Insecure = []string{reg.Host}
			tt.opts.Transport = counter
			tt.opts.Log = logger
			tt.opts.Retry = fast
			c := newClient(t, tt.opts)
			r := ref(t, c, repo+":1")
			var err error
			if tt.action == registry.Read {
				_, err = remote.Head(r, c.RemoteOptions(t.Context(), r.Context().Registry)...)
				counts := counter.Snapshot()
				require.Equal(t, 2, counts.Total(), "ping + one HEAD, no retry: %v", counts)
			} else {
				img, ierr := random.Image(64, 1)
				require.NoError(t, ierr)
				err = remote.Write(r.Context().Tag("2"), img, c.RemoteOptions(t.Context(), r.Context().Registry)...)
			}
			require.Error(t, err)
			status, ok := registry.IsAuthError(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, http.StatusUnauthorized, status)

			explained := c.Explain(err, r.Context(), tt.action)
			var ae *registry.AuthError
			require.ErrorAs(t, explained, &ae)
			require.Equal(t, tt.wantSource, ae.Source)
			require.Equal(t, tt.wantSource, c.Source(reg.Host))
			for _, w := range tt.want {
				require.Contains(t, explained.Error(), w)
			}
			for _, s := range []string{err.Error(), explained.Error(), logs.String()} {
				require.NotContains(t, s, canary)
			}
			require.Same(t, explained, c.Explain(explained, r.Context(), tt.action), "explaining twice changes nothing")
		})
	}
}

func TestExplainLeavesOtherErrorsAlone(t *testing.T) {
	c := newClient(t, registry.Options{})
	repo, err := c.Repo("ghcr.io/hoist-ci/app")
	require.NoError(t, err)
	boom := errors.New("boom")
	require.Same(t, boom, c.Explain(boom, repo, registry.Read))
	require.NoError(t, c.Explain(nil, repo, registry.Read))
	canceled := context.Canceled
	require.Equal(t, canceled, c.Explain(canceled, repo, registry.Read))
}

func TestAuthHintsPerRegistry(t *testing.T) {
	host := serve(t, func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusForbidden)
		return true
	})
	tests := []struct {
		repo string
		env  map[string]string
		want string
	}{
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", nil, "for Amazon ECR provide AWS credentials"},
		{"myreg.azurecr.io/app", nil, "AZURE_FEDERATED_TOKEN_FILE"},
		{"europe-docker.pkg.dev/p/r/app", nil, "application default credentials"},
		// How to give ghcr.io or GitLab's registry credentials on each CI
		// platform is internal/ci's (TestPlatformFixes): here, the need.
		{"ghcr.io/o/app", nil, "set the username and password inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			c := newClient(t, registry.Options{Insecure: []string{host}, Getenv: func(k string) string { return tt.env[k] }, Retry: fast})
			// A real 403 from a local server, explained as if it came from tt.repo.
			_, err := remote.Head(ref(t, c, host+"/x:1"), c.RemoteOptions(t.Context())...)
			require.Error(t, err)
			repo, rerr := c.Repo(tt.repo)
			require.NoError(t, rerr)
			explained := c.Explain(err, repo, registry.Push)
			require.Contains(t, explained.Error(), tt.want)
			kind, subject, ok := need.Of(explained)
			require.True(t, ok)
			require.Equal(t, need.RegistryPush, kind)
			require.Equal(t, repo.RegistryStr(), subject)
			require.NotContains(t, explained.Error(), "GitHub", "platform fixes are added by internal/ci")
			require.NotContains(t, explained.Error(), "GitLab")
		})
	}
}
