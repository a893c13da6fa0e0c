package testrig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Options configure S3.
type S3Options struct {
	// AccessKey and Secret are the one credential the server accepts.
	AccessKey, Secret string
	// Region is the buckets' region: a request signed for another is
	// refused as S3 refuses it (400 AuthorizationHeaderMalformed with
	// x-amz-bucket-region). Empty is us-east-1.
	Region string
	// HostBucket serves virtual-hosted addressing: the first label of Host
	// is the bucket.
	HostBucket bool
	// CutAfter, when > 0, breaks the first GET's connection after that
	// many body bytes.
	CutAfter int64
}

// S3Server is an S3-protocol server (github.com/johannesboyne/gofakes3,
// in memory) on a loopback port, behind a verifier of AWS Signature
// Version 4 written from AWS's specification: gofakes3 does not check
// signatures, S3 does. Unsigned requests are refused.
type S3Server struct {
	*httptest.Server
	Backend *s3mem.Backend
	// Requests counts every request, Ranged those with a Range header.
	Requests, Ranged atomic.Int32
	opts             S3Options
	cut              atomic.Bool
}

// S3 starts an S3Server for the test.
func S3(t testing.TB, o S3Options) *S3Server {
	t.Helper()
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	s := &S3Server{Backend: s3mem.New(), opts: o}
	opts := []gofakes3.Option{gofakes3.WithAutoBucket(false)}
	if o.HostBucket {
		opts = append(opts, gofakes3.WithHostBucket(true))
	}
	inner := gofakes3.New(s.Backend, opts...).Server()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		if r.Header.Get("Range") != "" {
			s.Ranged.Add(1)
		}
		if code, region, why := VerifySigV4(r, o.AccessKey, o.Secret, o.Region); code != 0 {
			if region != "" {
				w.Header().Set("X-Amz-Bucket-Region", region)
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>",
				map[int]string{400: "AuthorizationHeaderMalformed", 403: "SignatureDoesNotMatch"}[code], why)
			return
		}
		if o.CutAfter > 0 && r.Method == http.MethodGet && s.cut.CompareAndSwap(false, true) {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, buf, err := hj.Hijack(); err == nil {
					fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: %s\r\n\r\n", rec.Body.Len(), rec.Header().Get("ETag"))
					buf.Write(rec.Body.Bytes()[:min(o.CutAfter, int64(rec.Body.Len()))])
					buf.Flush()
					conn.Close()
					return
				}
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Put stores an object, creating its bucket.
func (s *S3Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	s.Bucket(t, bucket)
	if _, err := s.Backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("storing s3://%s/%s: %v", bucket, key, err)
	}
}

// Bucket creates a bucket (an existing one is kept).
func (s *S3Server) Bucket(t testing.TB, bucket string) {
	t.Helper()
	if err := s.Backend.CreateBucket(bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		t.Fatalf("creating the bucket %s: %v", bucket, err)
	}
}

// Get reads an object.
func (s *S3Server) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	obj, err := s.Backend.GetObject(bucket, key, nil)
	if err != nil {
		t.Fatalf("reading s3://%s/%s: %v", bucket, key, err)
	}
	defer obj.Contents.Close()
	b, err := io.ReadAll(obj.Contents)
	if err != nil {
		t.Fatalf("reading s3://%s/%s: %v", bucket, key, err)
	}
	return b
}

// VerifySigV4 checks a request's Authorization header as S3 does: the
// canonical request is rebuilt from what the server received (the path
// decoded, then encoded with AWS's UriEncode; the payload hash from
// x-amz-content-sha256, which S3 requires), the string to sign
// and the signing key derived from the secret. It returns 0 when the
// signature holds, else the status S3 would answer, the region to name
// (a request signed for another region) and why.
func VerifySigV4(r *http.Request, accessKey, secret, region string) (int, string, string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return 403, "", "the request is not signed with AWS4-HMAC-SHA256"
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
		return 403, "", "the signed headers are not sorted"
	}
	// S3 requires the payload's hash (or UNSIGNED-PAYLOAD) in a header.
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return 400, "", "missing required header for this request: x-amz-content-sha256"
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		return 403, "", "the path does not decode"
	}
	canon.WriteString(awsURIEncode(path, false) + "\n")
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			qs = append(qs, awsURIEncode(k, true)+"="+awsURIEncode(v, true))
		}
	}
	canon.WriteString(strings.Join(qs, "&") + "\n")
	for _, h := range signed {
		v := strings.Join(r.Header.Values(h), ",")
		if h == "host" {
			v = r.Host
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + payload)
	sum := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range scope[1:] {
		key = hmacSHA256(key, part)
	}
	if hex.EncodeToString(hmacSHA256(key, toSign)) != fields["Signature"] {
		return 403, "", "the request signature we calculated does not match the signature you provided"
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
