package buildcontext

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeGCS stands in for storage.googleapis.com and oauth2.googleapis.com
// over HTTPS: it serves one object to the bearer token it issued, replays
// the documented error bodies in testdata/gcs, and checks a service
// account's signed JWT before issuing that token.
type fakeGCS struct {
	srv    *httptest.Server
	client *http.Client
	pub    *rsa.PublicKey
	tokens atomic.Int32
}

const gcsToken = "ya29.hoist-test-token"

func newFakeGCS(t *testing.T, object string, data []byte) *fakeGCS {
	t.Helper()
	f := &fakeGCS{}
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "gcs", name))
		require.NoError(t, err)
		return b
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Host == "oauth2.googleapis.com" && r.URL.Path == "/token":
			require.NoError(t, r.ParseForm())
			require.Equal(t, "urn:ietf:params:oauth:grant-type:jwt-bearer", r.PostForm.Get("grant_type"))
			claims := verifyJWT(t, r.PostForm.Get("assertion"), f.pub)
			require.Equal(t, "ci-builder@hoist-test.iam.gserviceaccount.com", claims["iss"])
			require.Equal(t, gcsReadScope, claims["scope"])
			f.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": gcsToken, "expires_in": 3599, "token_type": "Bearer"})
		case r.Host != "storage.googleapis.com":
			http.NotFound(w, r)
		case r.Header.Get("Authorization") != "Bearer "+gcsToken:
			w.WriteHeader(401)
			_, _ = w.Write(fixture("unauthorized.json"))
		case r.URL.Query().Get("alt") != "media":
			w.WriteHeader(400)
		case r.URL.EscapedPath() == "/storage/v1/b/contexts/o/"+strings.ReplaceAll(object, "/", "%2F"):
			_, _ = w.Write(data)
		case strings.HasPrefix(r.URL.EscapedPath(), "/storage/v1/b/private/"):
			w.WriteHeader(403)
			_, _ = w.Write(fixture("forbidden.json"))
		default:
			w.WriteHeader(404)
			_, _ = w.Write(fixture("not-found.json"))
		}
	}))
	t.Cleanup(f.srv.Close)
	addr := f.srv.Listener.Addr().String()
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	f.client = &http.Client{Transport: tr}
	return f
}

// serviceAccountKey writes a service account key file, as the console
// downloads it, whose token_uri is the fake's.
func (f *fakeGCS) serviceAccountKey(t *testing.T) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.pub = &key.PublicKey
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	j, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "hoist-test", "private_key_id": "0123456789abcdef",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "ci-builder@hoist-test.iam.gserviceaccount.com", "client_id": "1234567890",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
	})
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(p, j, 0o600))
	return p
}

func verifyJWT(t *testing.T, jwt string, pub *rsa.PublicKey) map[string]any {
	parts := strings.Split(jwt, ".")
	require.Len(t, parts, 3)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	require.NoError(t, rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig), "the JWT is signed with the service account's key")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	return claims
}

func TestGCS(t *testing.T) {
	object := "builds/main_42.tar.gz"
	f := newFakeGCS(t, object, gz(t, app(t)))
	keyFile := f.serviceAccountKey(t)
	// Application Default Credentials read the process's environment.
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyFile)
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1") // never the real metadata server

	t.Run("service account key (Application Default Credentials)", func(t *testing.T) {
		c, err := Fetch(context.Background(), "gs://contexts/"+object, Options{HTTP: f.client, TempDir: t.TempDir()})
		require.NoError(t, err)
		defer c.Close()
		require.FileExists(t, filepath.Join(c.Dir, "hello.txt"))
		require.EqualValues(t, 1, f.tokens.Load())
	})

	t.Run("an access token given", func(t *testing.T) {
		c, err := Fetch(context.Background(), "gs://contexts/"+object, Options{HTTP: f.client, TempDir: t.TempDir(), Getenv: env("GOOGLE_OAUTH_ACCESS_TOKEN", gcsToken)})
		require.NoError(t, err)
		c.Close()
	})

	t.Run("documented errors", func(t *testing.T) {
		for _, tt := range []struct {
			name, ctx string
			getenv    func(string) string
			want      []string
		}{
			{"not found", "gs://contexts/builds/nope.tar.gz", nil, []string{"No such object: contexts/builds/nope.tar.gz (HTTP 404)", "check the bucket and the object"}},
			{"forbidden", "gs://private/ctx.tar.gz", nil, []string{"does not have storage.objects.get access", "(HTTP 403)"}},
			{"bad token", "gs://contexts/" + object, env("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.expired"), []string{"Invalid Credentials (HTTP 401)"}},
			{"no object", "gs://contexts", nil, []string{"want gs://<bucket>/<path to .tar.gz>"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := Fetch(context.Background(), tt.ctx, Options{HTTP: f.client, TempDir: t.TempDir(), Getenv: tt.getenv})
				require.Error(t, err)
				for _, w := range tt.want {
					require.Contains(t, err.Error(), w)
				}
			})
		}
	})
}

// TestGCSEmulator: STORAGE_EMULATOR_HOST reaches an emulator without
// credentials, as the client libraries do.
func TestGCSEmulator(t *testing.T) {
	data := gz(t, app(t))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Empty(t, r.Header.Get("Authorization"))
		require.Equal(t, "/storage/v1/b/contexts/o/ctx.tar.gz", r.URL.EscapedPath())
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	c, err := Fetch(context.Background(), "gs://contexts/ctx.tar.gz", Options{TempDir: t.TempDir(), Getenv: env("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL, "http://"))})
	require.NoError(t, err)
	c.Close()
}
