package redact

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
		require.Equal(t, tt.want, String(tt.in), tt.in)
		require.Equal(t, tt.want, String(String(tt.in)), "idempotent: %s", tt.in)
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
		require.Equal(t, s, String(s))
	}
}

func TestRedactError(t *testing.T) {
	require.NoError(t, Error(nil))
	plain := errors.New("nothing secret")
	require.Same(t, plain, Error(plain))
	inner := fmt.Errorf("reading: %w", fs.ErrNotExist)
	err := Error(fmt.Errorf("GET: you sent Bearer %s: %w", secretValue, inner))
	require.Equal(t, "GET: you sent Bearer ***: reading: file does not exist", err.Error())
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Same(t, err, Error(err), "redacting twice changes nothing")
}

// A registered secret is masked in its base64 forms too, whatever text
// was encoded with it.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "Basic dXNlcjpwYXNz", "https://a:b@h/", "?_state=x&y=1", `{"token":"a\"b"}`, "Bearer realm=\"x\"", "eyJa.eyJb.c"} {
		f.Add(s, "s3cr3t-value")
	}
	f.Fuzz(func(t *testing.T, s, secret string) {
		once := String(s)
		require.Equal(t, once, String(once), "idempotent")
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
			require.NotContains(t, String(s+" "+form+" "+s), form, "%q", form)
		}
	})
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://x-access-token:" + secretValue + "@github.com/o/r.git":            "https://***@github.com/o/r.git",
		"https://acct.blob.core.windows.net/c/k.tar.gz?sv=2020&sig=" + secretValue: "https://acct.blob.core.windows.net/c/k.tar.gz?…",
		"s3://bucket/key.tar.gz":            "s3://bucket/key.tar.gz",
		"git://host/org/repo.git#main":      "git://host/org/repo.git",
		"not a url":                         "not a url",
		"https://" + secretValue + "@h/x y": "https://***@h/x%20y",
	} {
		require.Equal(t, want, URL(in), in)
		require.NotContains(t, URL(in), secretValue)
	}
	require.Equal(t, "first", FirstLine("  first \nsecond"))
}
