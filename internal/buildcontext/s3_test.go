package buildcontext

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
)

const (
	s3Key    = "AKIAHOISTTEST0000001"
	s3Secret = "hoist/test/secret+key/0123456789abcdefghij"
)

// fakeS3 is an S3-protocol server (gofakes3) behind a verifier of AWS
// Signature Version 4 written from AWS's specification — gofakes3 does not
// check signatures, S3 does — which also answers a request signed for
// another region as S3 does (400 AuthorizationHeaderMalformed with
// x-amz-bucket-region).
type fakeS3 struct {
	*httptest.Server
	backend  *s3mem.Backend
	region   string
	requests atomic.Int32
	// cutAfter, when > 0, breaks the first response's connection after
	// that many body bytes.
	cutAfter int64
	cut      atomic.Bool
	ranged   atomic.Int32
}

func newFakeS3(t *testing.T, region string, hostBucket bool) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New(), region: region}
	opts := []gofakes3.Option{gofakes3.WithAutoBucket(false)}
	if hostBucket {
		opts = append(opts, gofakes3.WithHostBucket(true)) // the first label of Host is the bucket
	}
	faker := gofakes3.New(f.backend, opts...)
	inner := faker.Server()
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if r.Header.Get("Range") != "" {
			f.ranged.Add(1)
		}
		if r.Method == http.MethodGet && r.Header.Get("Authorization") != "" {
			if code, region, why := verifySigV4(r, s3Key, s3Secret, f.region); code != 0 {
				if region != "" {
					w.Header().Set("X-Amz-Bucket-Region", region)
				}
				w.WriteHeader(code)
				fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", map[int]string{400: "AuthorizationHeaderMalformed", 403: "SignatureDoesNotMatch"}[code], why)
				return
			}
		}
		if f.cutAfter > 0 && r.Method == http.MethodGet && f.cut.CompareAndSwap(false, true) {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			hj, ok := w.(http.Hijacker)
			require.True(t, ok)
			conn, buf, err := hj.Hijack()
			require.NoError(t, err)
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: %s\r\n\r\n", rec.Body.Len(), rec.Header().Get("ETag"))
			buf.Write(rec.Body.Bytes()[:f.cutAfter])
			buf.Flush()
			conn.Close()
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeS3) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	if err := f.backend.CreateBucket(bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		require.NoError(t, err)
	}
	_, err := f.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil)
	require.NoError(t, err)
}

// verifySigV4 checks an Authorization header as S3 does: the canonical
// request is rebuilt from what the server received (the path decoded, then
// encoded with AWS's UriEncode), the string to sign and the signing key
// derived from the secret. It returns 0 when the signature holds.
func verifySigV4(r *http.Request, accessKey, secret, region string) (int, string, string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return 403, "", "not AWS4-HMAC-SHA256"
	}
	fields := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] != accessKey || scope[3] != "s3" || scope[4] != "aws4_request" {
		return 403, "", "bad credential scope " + fields["Credential"]
	}
	if scope[2] != region {
		return 400, region, "the region '" + scope[2] + "' is wrong; expecting '" + region + "'"
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) {
		return 403, "", "signed headers not sorted"
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		return 403, "", "bad path"
	}
	canon.WriteString(awsURIEncode(path, false) + "\n")
	q := r.URL.Query()
	var qk []string
	for k := range q {
		qk = append(qk, k)
	}
	sort.Strings(qk)
	var qs []string
	for _, k := range qk {
		for _, v := range q[k] {
			qs = append(qs, awsURIEncode(k, true)+"="+awsURIEncode(v, true))
		}
	}
	canon.WriteString(strings.Join(qs, "&") + "\n")
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + r.Header.Get("X-Amz-Content-Sha256"))
	sum := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range []string{scope[1], scope[2], scope[3], scope[4]} {
		key = hmacSHA256(key, part)
	}
	if hex.EncodeToString(hmacSHA256(key, toSign)) != fields["Signature"] {
		return 403, "", "the request signature does not match"
	}
	for _, must := range []string{"host", "x-amz-date", "x-amz-content-sha256"} {
		if !contains(signed, must) {
			return 403, "", must + " is not signed"
		}
	}
	if r.Header.Get("Range") != "" && !contains(signed, "range") {
		return 403, "", "range is not signed"
	}
	return 0, "", ""
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// awsURIEncode is UriEncode from AWS's Signature Version 4 documentation.
func awsURIEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
		f := newFakeS3(t, "eu-west-3", false)
		f.put(t, "contexts", key, data)
		c, err := Fetch(context.Background(), "s3://contexts/"+key, Options{
			Getenv: s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true", "AWS_REGION", "eu-west-3"), TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		defer c.Close()
		require.FileExists(t, filepath.Join(c.Dir, "hello.txt"))
	})

	t.Run("virtual-hosted style", func(t *testing.T) {
		f := newFakeS3(t, "us-east-1", true)
		f.put(t, "contexts", key, data)
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
		f := newFakeS3(t, "ap-southeast-2", false)
		f.put(t, "contexts", "ctx.tar.gz", data)
		c, err := Fetch(context.Background(), "s3://contexts/ctx.tar.gz", Options{
			Getenv: s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true", "AWS_REGION", "us-west-2"), TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		c.Close()
		require.EqualValues(t, 2, f.requests.Load(), "one request refused for its region, one in the right one")
	})

	t.Run("a broken download resumes", func(t *testing.T) {
		f := newFakeS3(t, "us-east-1", false)
		big := gz(t, tarball(t, entry{name: "noise", body: strings.Repeat("hoist ", 200000)}, entry{name: "Dockerfile", body: "FROM scratch\n"}))
		f.put(t, "contexts", "big.tar.gz", big)
		f.cutAfter = int64(len(big) / 3)
		c, err := Fetch(context.Background(), "s3://contexts/big.tar.gz", Options{
			Getenv: s3Env(f.URL, "S3_FORCE_PATH_STYLE", "true"), TempDir: t.TempDir(),
		})
		require.NoError(t, err)
		defer c.Close()
		require.FileExists(t, filepath.Join(c.Dir, "Dockerfile"))
		require.EqualValues(t, 1, f.ranged.Load(), "resumed with a signed Range request")
	})

	t.Run("the SDK's credential chain", func(t *testing.T) {
		f := newFakeS3(t, "us-east-1", false)
		f.put(t, "contexts", "ctx.tar.gz", data)
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
		f := newFakeS3(t, "us-east-1", false)
		f.put(t, "contexts", "ctx.tar.gz", data)
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
	require.Equal(t, "a/b%20c/d%3De%2Bf%40g~h.tar.gz", escapeKey("a/b c/d=e+f@g~h.tar.gz"))
	require.Equal(t, "%E6%97%A5", escapeKey("日"))
}
