package ci

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const secretValue = "CANARY-s3cr3t-9f"

func TestRedactCredentialForms(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("ci:" + secretValue))
	token := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + secretValue))
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJlLWJ5dGVz"
	tests := []struct{ in, want string }{
		{"GET /v2/: you sent Basic " + basic, "GET /v2/: you sent Basic ***"},
		{"Authorization: Basic " + basic, "Authorization: ***"},
		{`{"authorization":"Bearer ` + secretValue + `"}`, `{"authorization":"***"}`},
		{"bearer " + secretValue + " refused", "bearer *** refused"},
		{"echo: " + basic, "echo: ***"},
		{"echo: " + token, "echo: ***"},
		{"https://x-access-token:" + secretValue + "@github.com/o/r.git", "https://***@github.com/o/r.git"},
		{"https://" + secretValue + "@gitlab.com/g/p.git", "https://***@gitlab.com/g/p.git"},
		{"credential x-access-token:" + secretValue + " refused", "credential x-access-token:*** refused"},
		{"PUT http://r/v2/a/blobs/uploads/1?_state=" + secretValue + "&digest=sha256:ab", "PUT http://r/v2/a/blobs/uploads/1?_state=***&digest=sha256:ab"},
		{"https://s3/x?X-Amz-Credential=AK%2F1&X-Amz-Signature=" + secretValue, "https://s3/x?X-Amz-Credential=***&X-Amz-Signature=***"},
		{`{"token":"` + secretValue + `","expires_in":300}`, `{"token":"***","expires_in":300}`},
		{`{"auths":{"r":{"auth":"` + basic + `"}}}`, `{"auths":{"r":{"auth":"***"}}}`},
		{"PRIVATE-TOKEN: " + secretValue, "PRIVATE-TOKEN: ***"},
		{"token " + jwt + " expired", "token *** expired"},
		{"ghp_" + strings.Repeat("A1", 18) + " is a token", "*** is a token"},
		{"glpat-" + strings.Repeat("x", 20), "***"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Redact(tt.in), tt.in)
		require.Equal(t, tt.want, Redact(Redact(tt.in)), "idempotent: %s", tt.in)
	}
}

func TestRedactLeavesOrdinaryTextAlone(t *testing.T) {
	for _, s := range []string{
		"",
		"pushing 127.0.0.1:5000/team/app:1.4.2@sha256:" + strings.Repeat("ab12", 16),
		`WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`,
		"Bearer realm=https://ghcr.io/token",
		"the token endpoint answered 404",
		"https://github.com/o/r.git and git@github.com:o/r.git",
		"commit 0123456789abcdef0123456789abcdef01234567",
		"retrying GET http://127.0.0.1:5000/v2/team/app/manifests/1 after 503 (attempt 2/5)",
		"deploy/app.yaml:12: image: registry.example.com/app:1.4.2",
		"Basic auth is configured",
		"Dockerfile:3: COPY ../x: outside the build context",
	} {
		require.Equal(t, s, Redact(s))
	}
}

func TestRedactError(t *testing.T) {
	require.NoError(t, RedactError(nil))
	plain := errors.New("nothing secret")
	require.Same(t, plain, RedactError(plain))
	inner := fmt.Errorf("reading: %w", fs.ErrNotExist)
	err := RedactError(fmt.Errorf("GET: you sent Bearer %s: %w", secretValue, inner))
	require.Equal(t, "GET: you sent Bearer ***: reading: file does not exist", err.Error())
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Same(t, err, RedactError(err), "redacting twice changes nothing")
}

// A registered secret is masked in its base64 forms too, whatever text
// was encoded with it.
func TestMaskerBase64Forms(t *testing.T) {
	m := &masker{}
	m.add(secretValue)
	for _, prefix := range []string{"", "u:", "ci:", "x-access-token:", "oauth2:"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			encoded := enc.EncodeToString([]byte(prefix + secretValue + "\n"))
			got := m.redact("value " + encoded + " end")
			require.NotContains(t, got, encoded, prefix)
			require.NotContains(t, got, secretValue)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "Basic dXNlcjpwYXNz", "https://a:b@h/", "?_state=x&y=1", `{"token":"a\"b"}`, "Bearer realm=\"x\"", "eyJa.eyJb.c"} {
		f.Add(s, "s3cr3t-value")
	}
	f.Fuzz(func(t *testing.T, s, secret string) {
		once := Redact(s)
		require.Equal(t, once, Redact(once), "idempotent")
		// A credential has no spaces, controls or delimiters of the forms.
		if utf8.RuneCountInString(secret) < 6 || strings.ContainsAny(secret, "\"'@/:?&#=<>,;[]\\") ||
			strings.IndexFunc(secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError }) >= 0 {
			return
		}
		for _, form := range []string{
			"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+secret)),
			"https://u:" + secret + "@host/x",
			"Bearer " + secret,
			"?_state=" + secret,
			`"token": "` + secret + `"`,
		} {
			require.NotContains(t, Redact(s+" "+form+" "+s), form, "%q", form)
		}
	})
}
