package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	tokenService = "bench-registry"
	tokenIssuer  = "bench-token-server"
)

// placeholderRealm is the realm the registry is configured with; each
// counting proxy rewrites it to its own /token endpoint, because
// go-containerregistry only accepts a loopback realm on the registry's own
// host:port (an SSRF guard).
const placeholderRealm = "http://token.invalid/token"

// tokenServer is a minimal Docker registry token server (the scheme of
// Docker Hub, GHCR, GitLab and Harbor): it checks HTTP Basic credentials and
// returns an ES256 JWT granting the requested scopes, which the registry
// verifies against the certificate it was configured with. The counting
// proxies serve it at /token.
type tokenServer struct {
	user     string
	password string
	key      *ecdsa.PrivateKey
	certDER  []byte
}

// newTokenServer makes a signing key and writes its certificate to certPath
// for the registry's rootcertbundle.
func newTokenServer(user, password, certPath string) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the token signing key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating the token signing certificate: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", certPath, err)
	}
	return &tokenServer{user: user, password: password, key: key, certDER: der}, nil
}

// authConfig is the body of the registry's auth: section for this token
// server.
func (ts *tokenServer) authConfig(certPath string) string {
	return fmt.Sprintf("token:\n  realm: %s\n  service: %s\n  issuer: %s\n  rootcertbundle: %s\n",
		placeholderRealm, tokenService, tokenIssuer, certPath)
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(ts.user)) != 1 ||
		subtle.ConstantTimeCompare([]byte(password), []byte(ts.password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="bench"`)
		http.Error(w, "credentials required", http.StatusUnauthorized)
		return
	}
	var access []map[string]any
	for _, scope := range r.URL.Query()["scope"] {
		// repository:NAME:ACTIONS; NAME has no colon here (no port in repository paths).
		parts := strings.Split(scope, ":")
		if len(parts) != 3 {
			continue
		}
		access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
	}
	tok, err := ts.sign(user, access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	body, _ := json.Marshal(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
	_, _ = w.Write(body)
}

// sign builds a JWT the registry accepts: ES256, the certificate in x5c.
func (ts *tokenServer) sign(subject string, access []map[string]any) (string, error) {
	now := time.Now()
	jti := make([]byte, 8)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	if err != nil {
		return "", fmt.Errorf("encoding the token header: %w", err)
	}
	if access == nil {
		access = []map[string]any{}
	}
	claims, err := json.Marshal(map[string]any{
		"iss": tokenIssuer, "sub": subject, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti), "access": access,
	})
	if err != nil {
		return "", fmt.Errorf("encoding the token claims: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing the token: %w", err)
	}
	sig := make([]byte, 64) // JWS ES256: R and S, 32 bytes each, big-endian
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
