package buildcontext

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hoist-ci/hoist/internal/redact"
)

// Azure Blob Storage: Get Blob over the REST API with the credential the
// environment gives, in this order — a SAS in the URL, AZURE_STORAGE_SAS_TOKEN,
// the account key (AZURE_STORAGE_ACCESS_KEY as kaniko reads it,
// AZURE_STORAGE_KEY as the az CLI does, or AccountKey in
// AZURE_STORAGE_CONNECTION_STRING) signed with Shared Key, an Entra ID token
// from workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID,
// AZURE_TENANT_ID: AKS, and Azure Pipelines' workload identity federation),
// from a client secret (AZURE_CLIENT_SECRET), or from the managed identity
// endpoint — else anonymously (a public container). A small client instead
// of the azblob and azidentity SDKs: one GET and one token request, where
// the SDKs would add several megabytes to build-push.

// azureBlobVersion is the REST API version requested (Entra ID tokens need
// 2017-11-09 or later).
const azureBlobVersion = "2021-12-02"

// azureStorageScope is the scope of an Entra ID token for Azure Storage.
const azureStorageScope = "https://storage.azure.com/.default"

// azureConn is what AZURE_STORAGE_CONNECTION_STRING says.
type azureConn struct {
	account, key, sas, blobEndpoint string
}

func parseConnectionString(s string) azureConn {
	var c azureConn
	proto, suffix := "https", "core.windows.net"
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "accountname":
			c.account = v
		case "accountkey":
			c.key = v
		case "sharedaccesssignature":
			c.sas = v
		case "blobendpoint":
			c.blobEndpoint = strings.TrimRight(v, "/")
		case "defaultendpointsprotocol":
			proto = v
		case "endpointsuffix":
			suffix = v
		}
	}
	if c.blobEndpoint == "" && c.account != "" {
		c.blobEndpoint = proto + "://" + c.account + ".blob." + suffix
	}
	return c
}

// underConnectionEndpoint tells whether u is under the connection string's
// blob endpoint (an emulator's http://127.0.0.1:10000/devstoreaccount1).
func underConnectionEndpoint(u string, getenv func(string) string) bool {
	cs := getenv("AZURE_STORAGE_CONNECTION_STRING")
	if cs == "" {
		return false
	}
	ep := parseConnectionString(cs).blobEndpoint
	return ep != "" && strings.HasPrefix(strings.ToLower(u), strings.ToLower(ep)+"/")
}

// azureBlobRef is a blob's URL and account.
type azureBlobRef struct {
	u       *url.URL
	account string
}

func parseAzureBlobURL(raw string, conn azureConn) (azureBlobRef, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return azureBlobRef{}, fmt.Errorf("not a URL: %w", scrubURLError(err))
	}
	ref := azureBlobRef{u: u}
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	if conn.blobEndpoint != "" && strings.HasPrefix(strings.ToLower(raw), strings.ToLower(conn.blobEndpoint)+"/") {
		// Path style (an emulator): the account is in the endpoint.
		ref.account = conn.account
		ep, _ := url.Parse(conn.blobEndpoint)
		if ep != nil {
			path = strings.TrimPrefix(strings.TrimPrefix(u.EscapedPath(), strings.TrimRight(ep.EscapedPath(), "/")), "/")
		}
	} else {
		ref.account, _, _ = strings.Cut(u.Hostname(), ".")
	}
	container, blob, _ := strings.Cut(path, "/")
	if ref.account == "" || container == "" || blob == "" {
		return azureBlobRef{}, errors.New("want https://<account>.blob.core.windows.net/<container>/<path to .tar.gz>")
	}
	return ref, nil
}

func openAzureBlob(ctx context.Context, src Source, o Options) (io.ReadCloser, error) {
	conn := parseConnectionString(o.Getenv("AZURE_STORAGE_CONNECTION_STRING"))
	ref, err := parseAzureBlobURL(src.Raw, conn)
	if err != nil {
		return nil, err
	}
	auth, how, err := azureAuth(ctx, ref, conn, o)
	if err != nil {
		return nil, err
	}
	o.Log.Debug("reading the Azure blob", "account", ref.account, "credential", how)
	what := redact.URL(src.Raw)
	return openObject(ctx, o.HTTP, what, func(ctx context.Context, offset int64, etag string) (*http.Request, error) {
		u := *ref.u
		if auth.sas != "" {
			u.RawQuery = mergeQuery(u.RawQuery, auth.sas)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, scrubURLError(err)
		}
		req.Header.Set("x-ms-version", azureBlobVersion)
		req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
		if offset > 0 {
			// x-ms-range is signed like any x-ms- header.
			req.Header.Set("x-ms-range", fmt.Sprintf("bytes=%d-", offset))
			if etag != "" {
				req.Header.Set("If-Match", etag)
			}
		}
		switch {
		case auth.key != nil:
			req.Header.Set("Authorization", "SharedKey "+ref.account+":"+sharedKeySignature(req, ref.account, auth.key))
		case auth.token != nil:
			t, err := auth.token(ctx)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+t)
		}
		return req, nil
	}, func(resp *http.Response) error { return azureFailure(resp, what, how) })
}

// azureCredential is how a request is authorised.
type azureCredential struct {
	sas   string
	key   []byte
	token func(context.Context) (string, error)
}

func azureAuth(ctx context.Context, ref azureBlobRef, conn azureConn, o Options) (azureCredential, string, error) {
	q := ref.u.Query()
	switch {
	case q.Get("sig") != "":
		return azureCredential{}, "the SAS in the URL", nil
	case o.Getenv("AZURE_STORAGE_SAS_TOKEN") != "":
		return azureCredential{sas: strings.TrimPrefix(o.Getenv("AZURE_STORAGE_SAS_TOKEN"), "?")}, "AZURE_STORAGE_SAS_TOKEN", nil
	case conn.sas != "":
		return azureCredential{sas: strings.TrimPrefix(conn.sas, "?")}, "the SAS in AZURE_STORAGE_CONNECTION_STRING", nil
	}
	for _, k := range []struct{ value, name string }{
		{o.Getenv("AZURE_STORAGE_ACCESS_KEY"), "AZURE_STORAGE_ACCESS_KEY"},
		{o.Getenv("AZURE_STORAGE_KEY"), "AZURE_STORAGE_KEY"},
		{conn.key, "the account key in AZURE_STORAGE_CONNECTION_STRING"},
	} {
		if k.value == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k.value))
		if err != nil {
			return azureCredential{}, "", fmt.Errorf("%s is not a storage account key (base64)", k.name)
		}
		return azureCredential{key: key}, k.name, nil
	}
	tenant, client := o.Getenv("AZURE_TENANT_ID"), o.Getenv("AZURE_CLIENT_ID")
	authority := strings.TrimRight(firstSet(o.Getenv, "AZURE_AUTHORITY_HOST"), "/")
	if authority == "" {
		authority = "https://login.microsoftonline.com"
	}
	switch {
	case o.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" && tenant != "" && client != "":
		file := o.Getenv("AZURE_FEDERATED_TOKEN_FILE")
		return azureCredential{token: cachedToken(func(ctx context.Context) (string, time.Time, error) {
			assertion, err := os.ReadFile(file)
			if err != nil {
				return "", time.Time{}, fmt.Errorf("reading AZURE_FEDERATED_TOKEN_FILE: %w", err)
			}
			return entraToken(ctx, o.HTTP, authority, tenant, url.Values{
				"client_id": {client}, "scope": {azureStorageScope}, "grant_type": {"client_credentials"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {strings.TrimSpace(string(assertion))},
			})
		})}, "workload identity (AZURE_FEDERATED_TOKEN_FILE)", nil
	case o.Getenv("AZURE_CLIENT_SECRET") != "" && tenant != "" && client != "":
		secret := o.Getenv("AZURE_CLIENT_SECRET")
		return azureCredential{token: cachedToken(func(ctx context.Context) (string, time.Time, error) {
			return entraToken(ctx, o.HTTP, authority, tenant, url.Values{
				"client_id": {client}, "scope": {azureStorageScope}, "grant_type": {"client_credentials"}, "client_secret": {secret},
			})
		})}, "a service principal (AZURE_CLIENT_SECRET)", nil
	}
	endpoint := o.Getenv("IDENTITY_ENDPOINT") // App Service, Container Apps, Arc
	if endpoint == "" {
		endpoint = "http://169.254.169.254/metadata/identity/oauth2/token"
	}
	mi := cachedToken(func(ctx context.Context) (string, time.Time, error) {
		return managedIdentityToken(ctx, o.HTTP, endpoint, o.Getenv("IDENTITY_HEADER"), client)
	})
	probe, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := mi(probe); err != nil {
		o.Log.Debug("no managed identity", "error", err.Error())
		return azureCredential{}, "no credential (a public container)", nil
	}
	return azureCredential{token: mi}, "the managed identity", nil
}

// cachedToken keeps a token until a minute before it expires.
func cachedToken(fetch func(context.Context) (string, time.Time, error)) func(context.Context) (string, error) {
	var mu sync.Mutex
	var tok string
	var exp time.Time
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok != "" && time.Until(exp) > time.Minute {
			return tok, nil
		}
		t, e, err := fetch(ctx)
		if err != nil {
			return "", err
		}
		tok, exp = t, e
		return tok, nil
	}
}

// entraToken asks Entra ID for a token (OAuth 2.0 client credentials).
func entraToken(ctx context.Context, client *http.Client, authority, tenant string, form url.Values) (string, time.Time, error) {
	u := authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return readToken(client, req, "Entra ID ("+u+")")
}

// managedIdentityToken asks the managed identity endpoint for a token.
func managedIdentityToken(ctx context.Context, client *http.Client, endpoint, header, clientID string) (string, time.Time, error) {
	q := url.Values{"resource": {"https://storage.azure.com/"}, "api-version": {"2018-02-01"}}
	if header != "" {
		q.Set("api-version", "2019-08-01")
	}
	if clientID != "" {
		q.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Metadata", "true")
	if header != "" {
		req.Header.Set("X-IDENTITY-HEADER", header)
	}
	return readToken(client, req, "the managed identity endpoint")
}

func readToken(client *http.Client, req *http.Request, from string) (string, time.Time, error) {
	resp, err := client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting a token from %s: %w", from, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var t struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	_ = json.Unmarshal(body, &t)
	if resp.StatusCode != http.StatusOK || t.AccessToken == "" {
		why := strings.TrimSpace(t.Error + " " + redact.FirstLine(t.Description))
		if why == "" {
			why = resp.Status
		}
		return "", time.Time{}, fmt.Errorf("getting a token from %s: %s", from, why)
	}
	secs := 3600
	var n json.Number
	if json.Unmarshal(t.ExpiresIn, &n) == nil {
		if v, err := n.Int64(); err == nil {
			secs = int(v)
		}
	} else {
		var s string
		if json.Unmarshal(t.ExpiresIn, &s) == nil {
			fmt.Sscan(s, &secs)
		}
	}
	return t.AccessToken, time.Now().Add(time.Duration(secs) * time.Second), nil
}

func mergeQuery(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "&" + b
}

// sharedKeySignature signs a request with the storage account key (the
// Shared Key scheme of API versions 2009-09-19 and later).
func sharedKeySignature(req *http.Request, account string, key []byte) string {
	h := req.Header
	length := h.Get("Content-Length")
	if req.ContentLength > 0 {
		length = fmt.Sprint(req.ContentLength)
	}
	if length == "0" {
		length = ""
	}
	var ms []string
	for k := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-ms-") {
			ms = append(ms, lk)
		}
	}
	sort.Strings(ms)
	var b strings.Builder
	for _, s := range []string{req.Method, h.Get("Content-Encoding"), h.Get("Content-Language"), length,
		h.Get("Content-MD5"), h.Get("Content-Type"), "", h.Get("If-Modified-Since"), h.Get("If-Match"),
		h.Get("If-None-Match"), h.Get("If-Unmodified-Since"), h.Get("Range")} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	for _, k := range ms {
		b.WriteString(k + ":" + strings.TrimSpace(h.Get(k)) + "\n")
	}
	b.WriteString("/" + account + req.URL.EscapedPath())
	params := map[string][]string{}
	for k, vs := range req.URL.Query() {
		params[strings.ToLower(k)] = append(params[strings.ToLower(k)], vs...)
	}
	var names []string
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		vals := params[k]
		sort.Strings(vals)
		b.WriteString("\n" + k + ":" + strings.Join(vals, ","))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

type azureError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func azureFailure(resp *http.Response, what, how string) error {
	var e azureError
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_ = xml.Unmarshal(body, &e)
	code := cmp.Or(e.Code, resp.Header.Get("x-ms-error-code"))
	msg := fmt.Sprintf("GET %s: HTTP %s", what, resp.Status)
	if code != "" {
		msg = fmt.Sprintf("GET %s: %s: %s (HTTP %d)", what, code, redact.FirstLine(e.Message), resp.StatusCode)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		msg += ": check the container and the blob the pipeline uploaded"
	case http.StatusForbidden, http.StatusUnauthorized:
		msg += ", authenticating with " + how + ": set AZURE_STORAGE_ACCESS_KEY (the account key), a SAS (in the URL or AZURE_STORAGE_SAS_TOKEN), or give the identity the Storage Blob Data Reader role"
	}
	return errors.New(msg)
}
