package testrig

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Echo is a hostile server for canary tests: every request that carries
// credentials is refused with an answer that echoes them back — the
// Authorization header in a response header and in the body, its
// credential without the scheme, and a Basic credential decoded
// (user:password) — the way a misconfigured proxy or a malicious registry
// could. It speaks enough of each protocol for hoist to send credentials:
//
//   - registry: /v2/ asks for Basic (or Bearer, with a /token endpoint that
//     hands out Token); HEAD answers 404; any other request with
//     credentials gets 400 with the echo, as text or as a registry JSON
//     error;
//   - git smart HTTP (…/info/refs): 401 without credentials, 403 with the
//     echo with them;
//   - GitHub (/api/v3/) and GitLab (/api/v4/) APIs: 500 with the echo.
type Echo struct {
	// URL is http(s)://127.0.0.1:PORT; Host is 127.0.0.1:PORT.
	URL, Host string
	// CertFile is the PEM of the server's certificate (TLS only): point
	// SSL_CERT_FILE at it so a client trusts the server.
	CertFile string
	// Token is what the /token endpoint hands out (a bearer token).
	Token string
}

// EchoOptions configure EchoServer.
type EchoOptions struct {
	// TLS serves HTTPS (bump sends a token over https only).
	TLS bool
	// Bearer makes /v2/ ask for a bearer token from /token instead of
	// Basic credentials.
	Bearer bool
	// Token is the bearer token /token hands out (default a canary).
	Token string
}

// EchoServer starts an Echo for the duration of the test.
func EchoServer(t testing.TB, opts EchoOptions) *Echo {
	t.Helper()
	e := &Echo{Token: opts.Token}
	if e.Token == "" {
		e.Token = "CANARY-bearer-" + randomHex(8)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serve(w, r, opts) })
	var srv *httptest.Server
	if opts.TLS {
		srv = httptest.NewTLSServer(h)
		cert := filepath.Join(t.TempDir(), "echo.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(cert, pemBytes, 0o644); err != nil {
			t.Fatalf("writing the echo server's certificate: %v", err)
		}
		e.CertFile = cert
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	e.Host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
	return e
}

// echoes are the forms in which a request's credentials are echoed.
func echoes(auth string) []string {
	out := []string{auth}
	scheme, cred, ok := strings.Cut(auth, " ")
	if !ok {
		return out
	}
	out = append(out, cred)
	if strings.EqualFold(scheme, "basic") {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

func (e *Echo) serve(w http.ResponseWriter, r *http.Request, opts EchoOptions) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		auth = r.Header.Get("Private-Token") // GitLab's API
	}
	p := r.URL.Path
	switch {
	case p == "/token":
		if auth == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": e.Token, "access_token": e.Token})
		return
	case auth == "" && (p == "/v2/" || strings.HasSuffix(p, "/info/refs")):
		if opts.Bearer && strings.HasPrefix(p, "/v2/") {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="echo"`, e.URL))
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
		return
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	forms := echoes(auth)
	w.Header().Set("X-Echo-Authorization", auth)
	text := "you sent " + strings.Join(forms, " | ")
	switch {
	case strings.HasSuffix(p, "/info/refs") || strings.Contains(p, "/git-"):
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintln(w, text)
	case strings.HasPrefix(p, "/api/v3/"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": text, "documentation_url": "https://docs.github.com"})
	case strings.HasPrefix(p, "/api/v4/"):
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, text)
	case strings.Contains(p, "/manifests/"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "DENIED", "message": text, "detail": forms[len(forms)-1]}}})
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintln(w, text)
	}
}

// Leaks returns the forms of secret found in text: the secret itself and
// the encodings a credential takes on the wire (base64 of user:secret,
// x-access-token:secret, oauth2:secret, the secret alone; URL-escaped).
func Leaks(text string, users []string, secret string) []string {
	forms := map[string]string{"plain": secret}
	for _, u := range append(users, "x-access-token", "oauth2", "") {
		pair := secret
		if u != "" {
			pair = u + ":" + secret
		}
		forms["base64("+pair+")"] = base64.StdEncoding.EncodeToString([]byte(pair))
		forms["base64url("+pair+")"] = base64.RawURLEncoding.EncodeToString([]byte(pair))
	}
	var found []string
	for what, f := range forms {
		if strings.Contains(text, f) {
			found = append(found, what)
		}
	}
	return found
}
