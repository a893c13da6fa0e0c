package buildcontext

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHTTPS reads kaniko's https:// context (a tarball on any server).
func TestHTTPS(t *testing.T) {
	data := gz(t, app(t))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/builds/ctx.tar.gz" {
			http.Error(w, "<html>not here</html>", http.StatusNotFound)
			return
		}
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	c, err := Fetch(context.Background(), srv.URL+"/builds/ctx.tar.gz?token=CANARY-url-token", Options{HTTP: srv.Client(), TempDir: t.TempDir()})
	require.NoError(t, err)
	defer c.Close()
	require.FileExists(t, filepath.Join(c.Dir, "Dockerfile"))

	_, err = Fetch(context.Background(), srv.URL+"/nope.tar.gz?token=CANARY-url-token", Options{HTTP: srv.Client(), TempDir: t.TempDir()})
	require.ErrorContains(t, err, "HTTP 404 Not Found: <html>not here</html>")
	require.NotContains(t, err.Error(), "CANARY")

	_, err = Fetch(context.Background(), srv.URL+"/builds/ctx.tar.gz", Options{TempDir: t.TempDir()})
	require.ErrorContains(t, err, "certificate", "an untrusted certificate is not retried or ignored")
}
