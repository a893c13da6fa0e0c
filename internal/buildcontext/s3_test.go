package buildcontext

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	s3Key    = "AKIAHOISTTEST0000001"
	s3Secret = "hoist/test/secret+key/0123456789abcdefghij"
)

func newS3(t *testing.T, region string, hostBucket bool) *testrig.S3Server {
	return testrig.S3(t, testrig.S3Options{AccessKey: s3Key, Secret: s3Secret, Region: region, HostBucket: hostBucket})
}

func s3Env(endpoint string, kv ...string) func(string) string {
	m := map[string]string{"S3_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": s3Key, "AWS_SECRET_ACCESS_KEY": s3Secret}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestS3(t *testing.T) {
	key := "feature/x=y_42 (1)+@.tar.gz" // characters S3 encodes its own way
	data := gz(t, app(t))

	t.Run("path style, kaniko's variables", func(t *testing.T) {
		f := newS3(t, "eu-west-3", false)
		f.Put(t, "contexts", key, data)
		c, err := Fetch(context.Background(), "s3://contexts/"+key, Options{
			Getenv: s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true", "AWS_REGION", "eu-west-3"), TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		defer c.Close()
		require.FileExists(t, filepath.Join(c.Dir, "hello.txt"))
	})

	t.Run("virtual-hosted style", func(t *testing.T) {
		f := newS3(t, "us-east-1", true)
		f.Put(t, "contexts", key, data)
		addr := f.Listener.Addr().String()
		_, port, _ := net.SplitHostPort(addr)
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
		c, err := Fetch(context.Background(), "s3://contexts/"+key, Options{
			Getenv: s3Env("http://s3.hoist.test:" + port), HTTP: client, TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		defer c.Close()
		require.FileExists(t, filepath.Join(c.Dir, "Dockerfile"))
	})

	t.Run("the bucket's region is found", func(t *testing.T) {
		f := newS3(t, "ap-southeast-2", false)
		f.Put(t, "contexts", "ctx.tar.gz", data)
		c, err := Fetch(context.Background(), "s3://contexts/ctx.tar.gz", Options{
			Getenv: s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true", "AWS_REGION", "us-west-2"), TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		c.Close()
		require.EqualValues(t, 2, f.Requests.Load(), "one request refused for its region, one in the right one")
	})

	t.Run("a broken download resumes", func(t *testing.T) {
		big := gz(t, tarball(t, entry{name: "noise", body: strings.Repeat("hoist ", 200000)}, entry{name: "Dockerfile", body: "FROM scratch\n"}))
		f := testrig.S3(t, testrig.S3Options{AccessKey: s3Key, Secret: s3Secret, CutAfter: int64(len(big) / 3)})
		f.Put(t, "contexts", "big.tar.gz", big)
		c, err := Fetch(context.Background(), "s3://contexts/big.tar.gz", Options{
			Getenv: s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true"), TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		defer c.Close()
		require.FileExists(t, filepath.Join(c.Dir, "Dockerfile"))
		require.EqualValues(t, 1, f.Ranged.Load(), "resumed with a signed Range request")
	})

	t.Run("the SDK's credential chain", func(t *testing.T) {
		f := newS3(t, "us-east-1", false)
		f.Put(t, "contexts", "ctx.tar.gz", data)
		dir := t.TempDir()
		creds := filepath.Join(dir, "credentials")
		require.NoError(t, os.WriteFile(creds, []byte("[ci]\naws_access_key_id = "+s3Key+"\naws_secret_access_key = "+s3Secret+"\n"), 0o600))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
		t.Setenv("AWS_PROFILE", "ci")
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
			t.Setenv(k, "")
		}
		env := map[string]string{"S3_ENDPOINT": f.URL, "S3_FORCE_PATH_STYLE": "true"}
		c, err := Fetch(context.Background(), "s3://contexts/ctx.tar.gz", Options{Getenv: func(k string) string { return env[k] }, TempDir: t.TempDir()})
		require.NoError(t, err)
		c.Close()
	})

	t.Run("errors name the cause", func(t *testing.T) {
		f := newS3(t, "us-east-1", false)
		f.Put(t, "contexts", "ctx.tar.gz", data)
		tests := []struct {
			name, ctx string
			env       func(string) string
			want      []string
		}{
			{"missing key", "s3://contexts/nope.tar.gz", s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true"), []string{"NoSuchKey", "HTTP 404", "check the bucket and the key"}},
			{"wrong secret", "s3://contexts/ctx.tar.gz", s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true", "AWS_SECRET_ACCESS_KEY", "wrong"), []string{"SignatureDoesNotMatch", "HTTP 403", "s3:GetObject"}},
			{"no key", "s3://contexts", s3Env(f.URL), []string{"want s3://<bucket>/<path to .tar.gz>"}},
			{"bad endpoint", "s3://contexts/ctx.tar.gz", s3Env("http://"), []string{"S3_ENDPOINT"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := Fetch(context.Background(), tt.ctx, Options{Getenv: tt.env, TempDir: t.TempDir()})
				require.Error(t, err)
				for _, w := range tt.want {
					require.Contains(t, err.Error(), w)
				}
				require.NotContains(t, err.Error(), s3Secret)
			})
		}
	})
}

func TestEscapeKey(t *testing.T) {
	// The key escaping is AWS's UriEncode, which the verifier in testrig
	// applies independently.
	require.Equal(t, "a/b%20c/d%3De%2Bf%40g~h.tar.gz", escapeKey("a/b c/d=e+f@g~h.tar.gz"))
	require.Equal(t, "%E6%97%A5", escapeKey("日"))
}
