package bucket

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

func TestParseURL(t *testing.T) {
	for in, want := range map[string]Location{
		"azure://deploy":            {Scheme: "azure", Bucket: "deploy"},
		"azure://deploy/apps/prod/": {Scheme: "azure", Bucket: "deploy", Prefix: "apps/prod"},
		"s3://manifests/team-a":     {Scheme: "s3", Bucket: "manifests", Prefix: "team-a"},
		"s3://manifests/":           {Scheme: "s3", Bucket: "manifests"},
	} {
		got, err := ParseURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"deploy", "gs://b/p", "https://acct.blob.core.windows.net/c", "s3://", "s3://b/a//c", "s3://b/../x", "s3://b/p?x=1", "azure://key@c/p"} {
		_, err := ParseURL(bad)
		require.Error(t, err, bad)
	}
}

// fileSet builds files from path → content.
func fileSet(m map[string]string) []File {
	var out []File
	for p, c := range m {
		out = append(out, File{Path: p, Data: []byte(c)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// countingStore counts writes, to prove unchanged objects are not sent.
type countingStore struct {
	Store
	puts, deletes atomic.Int32
}

func (c *countingStore) Put(ctx context.Context, key string, data, sum []byte) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, data, sum)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, key)
}

// exerciseSync runs the sync scenarios every store must pass.
func exerciseSync(t *testing.T, store Store, scheme string) {
	ctx := context.Background()
	cs := &countingStore{Store: store}
	loc := Location{Scheme: scheme, Bucket: "deploy", Prefix: "apps/prod"}
	other := Location{Scheme: scheme, Bucket: "deploy", Prefix: "apps/staging"}

	_, err := Sync(ctx, cs, other, fileSet(map[string]string{"keep.yaml": "k: 1\n"}), false, nil)
	require.NoError(t, err)

	v1 := map[string]string{"kustomization.yaml": "resources: [a.yaml]\n", "a.yaml": "a: 1\n", "sub/b.yaml": "b: 1\n", "sub/c.yaml": "c: 1\n"}
	res, err := Sync(ctx, cs, loc, fileSet(v1), false, nil)
	require.NoError(t, err)
	require.Equal(t, SyncResult{Uploaded: 4, BytesUploaded: 35}, res)

	cs.puts.Store(0)
	res, err = Sync(ctx, cs, loc, fileSet(v1), false, nil)
	require.NoError(t, err)
	require.Equal(t, SyncResult{Unchanged: 4}, res, "an unchanged tree must upload nothing")
	require.Zero(t, cs.puts.Load())

	v2 := map[string]string{"kustomization.yaml": "resources: [a.yaml]\n", "a.yaml": "a: 2\n", "sub/b.yaml": "b: 1\n", "new.yaml": "n: 1\n"}
	dry, err := Sync(ctx, cs, loc, fileSet(v2), true, nil)
	require.NoError(t, err)
	require.Equal(t, SyncResult{Uploaded: 2, Deleted: 1, Unchanged: 2, BytesUploaded: 10}, dry)
	require.Zero(t, cs.puts.Load(), "a dry run writes nothing")

	res, err = Sync(ctx, cs, loc, fileSet(v2), false, nil)
	require.NoError(t, err)
	require.Equal(t, dry, res)
	require.EqualValues(t, 2, cs.puts.Load())
	require.EqualValues(t, 1, cs.deletes.Load())

	objs, err := store.List(ctx, "apps/")
	require.NoError(t, err)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	require.Equal(t, []string{"apps/prod/a.yaml", "apps/prod/kustomization.yaml", "apps/prod/new.yaml", "apps/prod/sub/b.yaml", "apps/staging/keep.yaml"}, keys,
		"the prefix holds exactly the new tree; another prefix is untouched")
}

func azuriteContainer(t *testing.T, az *testrig.AzuriteServer, name string) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	require.NoError(t, err)
	_, err = c.CreateContainer(context.Background(), name, nil)
	require.NoError(t, err)
	return c
}

func TestSyncAzurite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	az := testrig.Azurite(t)
	azuriteContainer(t, az, "deploy")

	t.Run("connection string", func(t *testing.T) {
		store, err := NewAzure("deploy", AzureOptions{ConnectionString: az.ConnectionString()})
		require.NoError(t, err)
		exerciseSync(t, store, SchemeAzure)
	})
	t.Run("account key", func(t *testing.T) {
		store, err := NewAzure("deploy", AzureOptions{Endpoint: az.Endpoint, Account: testrig.AzuriteAccount, AccountKey: testrig.AzuriteKey})
		require.NoError(t, err)
		objs, err := store.List(context.Background(), "apps/prod/")
		require.NoError(t, err)
		require.Len(t, objs, 4)
		for _, o := range objs {
			require.Len(t, o.MD5, 16, "Azure keeps each blob's MD5 for the next comparison")
		}
	})
	t.Run("SAS token", func(t *testing.T) {
		c := azuriteContainer(t, az, "sas")
		perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}
		u, err := c.ServiceClient().NewContainerClient("sas").GetSASURL(perms, time.Now().Add(time.Hour), nil)
		require.NoError(t, err)
		token := u[strings.Index(u, "?")+1:]
		store, err := NewAzure("sas", AzureOptions{Endpoint: az.Endpoint, SASToken: token})
		require.NoError(t, err)
		res, err := Sync(context.Background(), store, Location{Scheme: SchemeAzure, Bucket: "sas"}, fileSet(map[string]string{"a.yaml": "a: 1\n"}), false, nil)
		require.NoError(t, err)
		require.Equal(t, 1, res.Uploaded)
	})
	t.Run("missing container", func(t *testing.T) {
		store, err := NewAzure("nope", AzureOptions{ConnectionString: az.ConnectionString()})
		require.NoError(t, err)
		_, err = Sync(context.Background(), store, Location{Scheme: SchemeAzure, Bucket: "nope"}, nil, false, nil)
		require.ErrorContains(t, err, "404 ContainerNotFound")
		require.NotContains(t, err.Error(), testrig.AzuriteKey)
	})
}

func TestSyncS3rver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts s3rver")
	}
	s3 := testrig.S3rver(t, "deploy")
	store, err := NewS3(context.Background(), "deploy", S3Options{Endpoint: s3.Endpoint, AccessKeyID: testrig.S3rverKey, SecretAccessKey: testrig.S3rverKey})
	require.NoError(t, err)
	exerciseSync(t, store, SchemeS3)

	// s3rver checks the access key ID (it does not verify SigV4
	// signatures): a wrong key is refused with S3's error code.
	bad, err := NewS3(context.Background(), "deploy", S3Options{Endpoint: s3.Endpoint, AccessKeyID: "WRONGKEY", SecretAccessKey: "canary-secret-0d5e"})
	require.NoError(t, err)
	_, err = bad.List(context.Background(), "")
	require.ErrorContains(t, err, "InvalidAccessKeyId")
	require.NotContains(t, err.Error(), "canary-secret-0d5e")
}

// TestAzureWorkloadIdentity: the federated token in AZURE_FEDERATED_TOKEN_FILE
// is exchanged at the authority for a storage token, which the blob
// requests carry.
func TestAzureWorkloadIdentity(t *testing.T) {
	const tenant, client, federated = "00000000-0000-0000-0000-000000000001", "app-client-id", "eyJ.federated.service-account-token"
	var exchanged atomic.Int32
	aad := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
			require.NoError(t, r.ParseForm())
			if r.PostForm.Get("client_assertion") != federated || r.PostForm.Get("client_id") != client ||
				!strings.Contains(r.PostForm.Get("scope"), "https://storage.azure.com") {
				http.Error(w, "bad exchange", http.StatusUnauthorized)
				return
			}
			exchanged.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "storage-token", "expires_in": 3599, "token_type": "Bearer"})
		case strings.Contains(r.URL.Path, "openid-configuration"):
			base := "https://" + r.Host + "/" + tenant
			_ = json.NewEncoder(w).Encode(map[string]any{
				"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
				"issuer": base + "/v2.0",
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(aad.Close)
	var bearer atomic.Value
	blobs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs></Blobs><NextMarker/></EnumerationResults>`))
	}))
	t.Cleanup(blobs.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(federated), 0o600))

	store, err := NewAzure("deploy", AzureOptions{Endpoint: blobs.URL + "/acct", TokenFile: tokenFile, ClientID: client, TenantID: tenant, AuthorityHost: aad.URL, Transport: trustBoth(aad, blobs)})
	require.NoError(t, err)
	_, err = store.List(context.Background(), "")
	require.NoError(t, err)
	require.EqualValues(t, 1, exchanged.Load())
	require.Equal(t, "Bearer storage-token", bearer.Load())
}

// trustBoth is a client that trusts both test servers' certificates.
func trustBoth(a, b *httptest.Server) *http.Client {
	pool := a.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	pool.AddCert(b.Certificate())
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
