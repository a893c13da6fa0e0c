package buildcontext

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// Azurite's well-known development account.
const (
	devAccount = "devstoreaccount1"
	devKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azurite is Azurite's Blob service (npm azurite, installed by
// test/rig/install.sh) on a loopback port.
type azurite struct {
	endpoint string // http(s)://127.0.0.1:PORT/devstoreaccount1
	client   *http.Client
}

// startAzurite starts azurite-blob. With tlsOAuth it serves HTTPS with a
// fresh certificate and accepts Entra ID bearer tokens (--oauth basic:
// their audience, issuer and lifetime are checked, not their signature).
func startAzurite(t *testing.T, tlsOAuth bool) *azurite {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Azurite (test/rig/install.sh); skipped in -short mode")
	}
	bin, err := exec.LookPath("azurite-blob")
	if err != nil {
		root, rerr := testrig.RepoRoot()
		require.NoError(t, rerr)
		bin = filepath.Join(root, ".cache", "tools", "bin", "azurite-blob")
		if _, serr := os.Stat(bin); serr != nil {
			t.Fatalf("azurite-blob is not installed: run test/rig/install.sh (npm install azurite into .cache/tools)")
		}
	}
	dir := t.TempDir()
	port := freePort(t)
	args := []string{"--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port), "--location", dir, "--silent", "--disableTelemetry"}
	a := &azurite{endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, devAccount), client: &http.Client{}}
	if tlsOAuth {
		certPEM, keyPEM, pool := selfSigned(t)
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		require.NoError(t, os.WriteFile(cert, certPEM, 0o600))
		require.NoError(t, os.WriteFile(key, keyPEM, 0o600))
		args = append(args, "--cert", cert, "--key", key, "--oauth", "basic")
		a.endpoint = strings.Replace(a.endpoint, "http://", "https://", 1)
		a.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 2 * time.Second // children keep the output open
	cmd.Dir = dir
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("azurite-blob did not listen on port %d within 30 s:\n%s", port, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return a
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

// put creates the container and uploads a block blob with the account key.
func (a *azurite) put(t *testing.T, container, blob string, data []byte) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(devKey)
	require.NoError(t, err)
	do := func(method, u string, body []byte, headers map[string]string) *http.Response {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("x-ms-version", azureBlobVersion)
		req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "SharedKey "+devAccount+":"+sharedKeySignature(req, devAccount, key))
		resp, err := a.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodPut, a.endpoint+"/"+container+"?restype=container", nil, nil)
	require.Contains(t, []int{201, 409}, resp.StatusCode, "creating the container")
	resp = do(http.MethodPut, a.endpoint+"/"+container+"/"+escapeKey(blob), data, map[string]string{"x-ms-blob-type": "BlockBlob"})
	require.Equal(t, 201, resp.StatusCode, "uploading the blob")
}

func (a *azurite) conn(withKey bool) string {
	s := "DefaultEndpointsProtocol=http;AccountName=" + devAccount + ";BlobEndpoint=" + a.endpoint + ";"
	if withKey {
		s += "AccountKey=" + devKey + ";"
	}
	return s
}

// accountSAS signs a read-only account SAS (version 2019-02-02) with the
// account key.
func accountSAS(t *testing.T) string {
	key, err := base64.StdEncoding.DecodeString(devKey)
	require.NoError(t, err)
	q := url.Values{"sv": {"2019-02-02"}, "ss": {"b"}, "srt": {"sco"}, "sp": {"rl"}, "se": {time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")}, "spr": {"https,http"}}
	toSign := strings.Join([]string{devAccount, q.Get("sp"), q.Get("ss"), q.Get("srt"), "", q.Get("se"), "", q.Get("spr"), q.Get("sv"), ""}, "\n")
	m := hmac.New(sha256.New, key)
	m.Write([]byte(toSign))
	q.Set("sig", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return q.Encode()
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestAzureBlobOnAzurite(t *testing.T) {
	a := startAzurite(t, false)
	blob := "builds/main_42 (x).tar.gz"
	a.put(t, "contexts", blob, gz(t, app(t)))
	u := a.endpoint + "/contexts/" + escapeKey(blob)
	sas := accountSAS(t)
	tests := []struct {
		name, ctx string
		env       func(string) string
	}{
		{"account key in the connection string", u, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(true))},
		{"kaniko's AZURE_STORAGE_ACCESS_KEY", u, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false), "AZURE_STORAGE_ACCESS_KEY", devKey)},
		{"the az CLI's AZURE_STORAGE_KEY", u, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false), "AZURE_STORAGE_KEY", devKey)},
		{"SAS in the URL", u + "?" + sas, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false))},
		{"AZURE_STORAGE_SAS_TOKEN", u, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false), "AZURE_STORAGE_SAS_TOKEN", "?"+sas)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Fetch(context.Background(), tt.ctx, Options{Getenv: tt.env, HTTP: a.client, TempDir: t.TempDir()})
			require.NoError(t, err)
			defer c.Close()
			require.FileExists(t, filepath.Join(c.Dir, "hello.txt"))
		})
	}

	t.Run("errors name the cause and no credential", func(t *testing.T) {
		wrong := base64.StdEncoding.EncodeToString([]byte("not the key of this account at all"))
		for _, tt := range []struct {
			name, ctx string
			env       func(string) string
			want      []string
		}{
			{"wrong key", u, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false), "AZURE_STORAGE_ACCESS_KEY", wrong), []string{"HTTP 403", "AZURE_STORAGE_ACCESS_KEY", "Storage Blob Data Reader"}},
			{"missing blob", a.endpoint + "/contexts/nope.tar.gz", env("AZURE_STORAGE_CONNECTION_STRING", a.conn(true)), []string{"BlobNotFound", "HTTP 404"}},
			{"key not base64", u, env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false), "AZURE_STORAGE_ACCESS_KEY", "%%%"), []string{"AZURE_STORAGE_ACCESS_KEY is not a storage account key"}},
			{"tampered SAS", u + "?" + strings.Replace(sas, "sp=rl", "sp=rwl", 1), env("AZURE_STORAGE_CONNECTION_STRING", a.conn(false)), []string{"HTTP 403"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := Fetch(context.Background(), tt.ctx, Options{Getenv: tt.env, HTTP: a.client, TempDir: t.TempDir()})
				require.Error(t, err)
				for _, w := range tt.want {
					require.Contains(t, err.Error(), w)
				}
				require.NotContains(t, err.Error(), wrong)
				require.NotContains(t, err.Error(), "sig=")
			})
		}
	})
}

// TestAzureBlobWorkloadIdentity: the federated token in
// AZURE_FEDERATED_TOKEN_FILE is exchanged for an Entra ID token (a fake
// token endpoint checks the exchange), which Azurite accepts over HTTPS.
func TestAzureBlobWorkloadIdentity(t *testing.T) {
	a := startAzurite(t, true)
	a.put(t, "contexts", "ctx.tar.gz", gz(t, app(t)))
	const tenant, client = "00000000-1111-2222-3333-444444444444", "55555555-6666-7777-8888-999999999999"
	fedFile := filepath.Join(t.TempDir(), "azure-identity-token")
	require.NoError(t, os.WriteFile(fedFile, []byte("eyJ.federated.kubernetes-service-account-token\n"), 0o600))
	var exchanges atomic.Int32
	entra := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/"+tenant+"/oauth2/v2.0/token", r.URL.Path)
		require.NoError(t, r.ParseForm())
		if r.PostForm.Get("client_assertion") != "eyJ.federated.kubernetes-service-account-token" ||
			r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			r.PostForm.Get("client_id") != client || r.PostForm.Get("scope") != "https://storage.azure.com/.default" ||
			r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range.\r\nTrace ID: x"}`)
			return
		}
		exchanges.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fakeEntraJWT(tenant), "expires_in": 3599, "token_type": "Bearer"})
	}))
	defer entra.Close()
	getenv := env("AZURE_STORAGE_CONNECTION_STRING", "BlobEndpoint="+a.endpoint+";AccountName="+devAccount+";",
		"AZURE_FEDERATED_TOKEN_FILE", fedFile, "AZURE_CLIENT_ID", client, "AZURE_TENANT_ID", tenant, "AZURE_AUTHORITY_HOST", entra.URL)
	c, err := Fetch(context.Background(), a.endpoint+"/contexts/ctx.tar.gz", Options{Getenv: getenv, HTTP: a.client, TempDir: t.TempDir()})
	require.NoError(t, err)
	defer c.Close()
	require.FileExists(t, filepath.Join(c.Dir, "Dockerfile"))
	require.EqualValues(t, 1, exchanges.Load())

	// A rejected exchange is named.
	require.NoError(t, os.WriteFile(fedFile, []byte("expired"), 0o600))
	_, err = Fetch(context.Background(), a.endpoint+"/contexts/ctx.tar.gz", Options{Getenv: getenv, HTTP: a.client, TempDir: t.TempDir()})
	require.ErrorContains(t, err, "invalid_client AADSTS700024: Client assertion is not within its valid time range.")
}

// fakeEntraJWT is a token of the shape Entra ID issues for Azure Storage
// (unsigned: Azurite's basic OAuth mode does not check signatures).
func fakeEntraJWT(tenant string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Unix()
	return enc(map[string]any{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]any{
		"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/" + tenant + "/", "tid": tenant,
		"iat": now - 60, "nbf": now - 60, "exp": now + 3600, "oid": "hoist-test",
	}) + ".c2lnbmF0dXJl"
}

func TestSharedKeyCanonicalisation(t *testing.T) {
	// Azure's documented example for a Shared Key string to sign has this
	// shape; the request here checks the pieces hoist fills: x-ms- headers
	// sorted and trimmed, the account before the path, query parameters
	// lower-cased and sorted.
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:10000/devstoreaccount1/c/b%20x?restype=container&Comp=list", nil)
	req.Header.Set("x-ms-version", "2021-12-02")
	req.Header.Set("X-Ms-Date", "Fri, 26 Jun 2015 23:39:12 GMT")
	req.Header.Set("x-ms-range", " bytes=5- ")
	key := []byte("k")
	want := "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-range:bytes=5-\nx-ms-version:2021-12-02\n/devstoreaccount1/devstoreaccount1/c/b%20x\ncomp:list\nrestype:container"
	m := hmac.New(sha256.New, key)
	m.Write([]byte(want))
	require.Equal(t, base64.StdEncoding.EncodeToString(m.Sum(nil)), sharedKeySignature(req, "devstoreaccount1", key))
}
