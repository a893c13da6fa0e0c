package buildcontext

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hoist-ci/hoist/internal/redact"
)

// FuzzParse: any context string parses or fails without panicking, a
// remote one is told from a local one consistently, and what error
// messages show of it never holds a URL's password or query.
func FuzzParse(f *testing.F) {
	for _, s := range []string{".", "dir:///w", "s3://b/k.tar.gz", "gs://b/k", "tar://stdin", "git://h/r.git#main#" + strings.Repeat("a", 40),
		"https://a.blob.core.windows.net/c/k?sig=SECRET", "https://u:SECRET@h/x", "ftp://x", "http://", "s3://", "://", "git://TOKEN@h/r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := Parse(s, nil)
		if err != nil {
			if u, perr := url.Parse(s); perr == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(err.Error(), p) {
					t.Fatalf("the error shows the password: %v", err)
				}
			}
			return
		}
		if (src.Kind != KindLocal) != IsRemote(s) {
			t.Fatalf("%q: kind %s but IsRemote %v", s, src.Kind, IsRemote(s))
		}
		shown := redact.URL(s)
		if u, perr := url.Parse(s); perr == nil && u.Scheme != "" {
			if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(shown, p) {
				t.Fatalf("redact.URL(%q) = %q shows the password", s, shown)
			}
			if len(u.RawQuery) > 3 && strings.Contains(shown, u.RawQuery) {
				t.Fatalf("redact.URL(%q) = %q shows the query", s, shown)
			}
		}
	})
}
