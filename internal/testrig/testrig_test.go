package testrig_test

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/hoist-ci/hoist/internal/testrig"
)

func head(t *testing.T, ref string, opts ...remote.Option) (string, error) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Head(r, append([]remote.Option{remote.WithContext(t.Context())}, opts...)...)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func TestRegistryWithoutAuth(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	require.Regexp(t, `^127\.0\.0\.1:\d+$`, reg.Host)
	desc := testrig.PushRandomImage(t, reg.Host+"/team/app:1")
	got, err := head(t, reg.Host+"/team/app:1")
	require.NoError(t, err)
	require.Equal(t, desc.Digest.String(), got)

	idx := testrig.PushRandomIndex(t, reg.Host+"/team/app:multi")
	got, err = head(t, reg.Host+"/team/app:multi")
	require.NoError(t, err)
	require.Equal(t, idx.Digest.String(), got)
}

func TestRegistryWithHtpasswd(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "pw-1", "zed": "pw-2"}})
	require.Equal(t, &authn.Basic{Username: "ci", Password: "pw-1"}, reg.Auth())

	resp, err := http.Get("http://" + reg.Host + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	desc := testrig.PushRandomImage(t, reg.Host+"/team/app:1", reg.RemoteOptions()...)
	tests := []struct {
		name   string
		auth   authn.Authenticator
		status int
	}{
		{"first user", reg.Auth(), 0},
		{"second user", &authn.Basic{Username: "zed", Password: "pw-2"}, 0},
		{"wrong password", &authn.Basic{Username: "ci", Password: "nope"}, http.StatusUnauthorized},
		{"anonymous", authn.Anonymous, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := head(t, reg.Host+"/team/app:1", remote.WithAuth(tt.auth))
			if tt.status == 0 {
				require.NoError(t, err)
				require.Equal(t, desc.Digest.String(), got)
				return
			}
			var te *transport.Error
			require.True(t, errors.As(err, &te), "%v", err)
			require.Equal(t, tt.status, te.StatusCode)
		})
	}
}

func TestStartRegistryStopsAndKeepsItsLog(t *testing.T) {
	if _, err := exec.LookPath(testrig.RegistryBinary); err != nil {
		t.Skipf("%s is not installed", testrig.RegistryBinary)
	}
	dir := t.TempDir()
	reg, err := testrig.StartRegistry(t.Context(), dir, testrig.RegistryOptions{})
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	require.Regexp(t, `^127\.0\.0\.1:\d+$`, reg.Host)
	require.Equal(t, filepath.Join(dir, "storage"), reg.Dir)
	testrig.PushRandomImage(t, reg.Host+"/team/app:1")
	require.Contains(t, reg.LogTail(100), `"PUT /v2/team/app/manifests/1 HTTP/1.1" 201`)

	reg.Stop()
	reg.Stop() // a second Stop is a no-op
	client := &http.Client{Timeout: time.Second}
	_, err = client.Get("http://" + reg.Host + "/v2/")
	require.Error(t, err, "the registry still answers after Stop")
}

func TestRegistryAuthConfigQuiet(t *testing.T) {
	// silly: a challenge for any request without an Authorization header.
	reg := testrig.Registry(t, testrig.RegistryOptions{
		AuthConfig: "silly:\n  realm: http://token.invalid/token\n  service: rig\n",
		Quiet:      true,
	})
	require.Equal(t, authn.Anonymous, reg.Auth())
	resp, err := http.Get("http://" + reg.Host + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, `Bearer realm="http://token.invalid/token",service="rig"`, resp.Header.Get("WWW-Authenticate"))
	require.NotContains(t, reg.LogTail(100), "GET /v2/", "Quiet keeps no access log")
}

func TestRegistryHtpasswdCost(t *testing.T) {
	if _, err := exec.LookPath(testrig.RegistryBinary); err != nil {
		t.Skipf("%s is not installed", testrig.RegistryBinary)
	}
	dir := t.TempDir()
	reg, err := testrig.StartRegistry(t.Context(), dir, testrig.RegistryOptions{Users: map[string]string{"ci": "pw"}, HtpasswdCost: 5})
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	data, err := os.ReadFile(filepath.Join(dir, "htpasswd"))
	require.NoError(t, err)
	user, hash, _ := strings.Cut(strings.TrimSpace(string(data)), ":")
	require.Equal(t, "ci", user)
	cost, err := bcrypt.Cost([]byte(hash))
	require.NoError(t, err)
	require.Equal(t, 5, cost)
	testrig.PushRandomImage(t, reg.Host+"/team/app:1", reg.RemoteOptions()...)
}

func TestStartRegistryRejectsConflictingOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    testrig.RegistryOptions
		wantErr string
	}{
		{"users and auth config", testrig.RegistryOptions{Users: map[string]string{"ci": "pw"}, AuthConfig: "silly: {}\n"}, "Users and AuthConfig"},
		{"auth: line in auth config", testrig.RegistryOptions{AuthConfig: "auth:\n  silly: {}\n"}, "leave out the `auth:` line"},
		{"cost without users", testrig.RegistryOptions{HtpasswdCost: 5}, "without Users"},
		{"cost out of range", testrig.RegistryOptions{Users: map[string]string{"ci": "pw"}, HtpasswdCost: 99}, "HtpasswdCost 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := testrig.StartRegistry(t.Context(), t.TempDir(), tt.opts)
			require.ErrorContains(t, err, tt.wantErr)
			require.Nil(t, reg)
		})
	}
}

func TestFaultProxyFaultsEveryNth(t *testing.T) {
	proxy := testrig.FaultProxy(t, testrig.InProcessRegistry(t), 3)
	// Fresh connections: net/http silently retries a GET reset on a reused one.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var got []string
	for range 9 {
		resp, err := client.Get("http://" + proxy.Host + "/v2/")
		if err != nil {
			got = append(got, "error")
			continue
		}
		resp.Body.Close()
		got = append(got, resp.Status)
	}
	require.Equal(t, []string{
		"200 OK", "200 OK", "503 Service Unavailable",
		"200 OK", "200 OK", "error",
		"200 OK", "200 OK", "503 Service Unavailable",
	}, got)
	require.Equal(t, 9, proxy.Requests())
	require.Equal(t, 3, proxy.Faults())
	require.Equal(t, 1, proxy.Resets())
	require.Equal(t, 9, proxy.Counter.Snapshot().Get(http.MethodGet, testrig.KindPing))
}

func TestFaultProxyForwardsPushesAndRewritesLocation(t *testing.T) {
	target := testrig.Registry(t, testrig.RegistryOptions{}).Host // answers with absolute Locations
	proxy := testrig.FaultProxy(t, target, 0)
	desc := testrig.PushRandomImage(t, proxy.Host+"/team/app:1")
	got, err := head(t, target+"/team/app:1") // straight from the registry
	require.NoError(t, err)
	require.Equal(t, desc.Digest.String(), got)
	require.Zero(t, proxy.Faults())

	// The upload's Location points at the proxy, not the registry.
	resp, err := http.Post("http://"+proxy.Host+"/v2/team/app/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, proxy.Host, loc.Host)

	counts := proxy.Counter.Snapshot()
	require.Equal(t, 1, counts.Get(http.MethodPut, testrig.KindManifest), "%v", counts)
	require.Positive(t, counts.Kind(testrig.KindBlobUpload), "%v", counts)
}

func TestCounterClassifies(t *testing.T) {
	tests := []struct {
		method, url string
		want        testrig.Kind
	}{
		{"GET", "http://r/v2/", testrig.KindPing},
		{"GET", "http://r/v2", testrig.KindPing},
		{"GET", "http://auth/token?scope=repository:a:pull&service=r", testrig.KindToken},
		{"POST", "http://auth/oauth2/token", testrig.KindToken},
		{"GET", "http://r/v2/team/app/manifests/1.4", testrig.KindManifest},
		{"PUT", "http://r/v2/app/manifests/sha256:abc", testrig.KindManifest},
		{"HEAD", "http://r/v2/manifests/blobs/sha256:abc", testrig.KindBlob},
		{"GET", "http://r/v2/team/app/blobs/sha256:abc", testrig.KindBlob},
		{"POST", "http://r/v2/team/app/blobs/uploads/", testrig.KindBlobUpload},
		{"POST", "http://r/v2/team/app/blobs/uploads/?mount=sha256:abc&from=x", testrig.KindBlobUpload},
		{"PATCH", "http://r/v2/team/app/blobs/uploads/3f2a-11", testrig.KindBlobUpload},
		{"PUT", "http://r/v2/team/app/blobs/uploads/3f2a-11?digest=sha256:abc", testrig.KindBlobUpload},
		{"GET", "http://r/v2/team/app/tags/list", testrig.KindTagsList},
		{"GET", "http://r/v2/_catalog", testrig.KindCatalog},
		{"GET", "http://r/v2/team/app/referrers/sha256:abc", testrig.KindReferrers},
		{"GET", "http://r/healthz", testrig.KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			require.NoError(t, err)
			require.Equal(t, tt.want, testrig.Classify(req))
		})
	}
}

func TestCounterCountsRoundTrips(t *testing.T) {
	host := testrig.InProcessRegistry(t)
	counter := testrig.NewCounter(http.DefaultTransport)
	testrig.PushRandomImage(t, host+"/team/app:1", remote.WithTransport(counter))
	counts := counter.Snapshot()
	require.Equal(t, 1, counts.Get(http.MethodPut, testrig.KindManifest), "%v", counts)
	require.Positive(t, counts.Blobs(), "%v", counts)

	counter.Reset()
	_, err := head(t, host+"/team/app:1", remote.WithTransport(counter))
	require.NoError(t, err)
	counts = counter.Snapshot()
	require.Equal(t, 1, counts.Get(http.MethodHead, testrig.KindManifest), "%v", counts)
	require.Zero(t, counts.Blobs(), "%v", counts)
	require.Equal(t, "GET ping=1 HEAD manifest=1", counts.String())
}
