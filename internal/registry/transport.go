package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hoist-ci/hoist/internal/backoff"
	"github.com/hoist-ci/hoist/internal/redact"
	"golang.org/x/net/http/httpproxy"
)

// retryStatus are the HTTP statuses retried by the transport.
var retryStatus = map[int]bool{
	http.StatusRequestTimeout:      true,
	http.StatusTooManyRequests:     true,
	http.StatusInternalServerError: true,
	http.StatusBadGateway:          true,
	http.StatusServiceUnavailable:  true,
	http.StatusGatewayTimeout:      true,
}

// InsecureError is returned for a plain-HTTP request to a host that is not
// on the insecure list. go-containerregistry falls back to HTTP for
// localhost, loopback and private addresses on its own; hoist does not.
type InsecureError struct {
	Host string
}

func (e *InsecureError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s: it is not in insecure-registries; "+
		"if this registry really serves plain HTTP (or a certificate hoist cannot verify), add it: insecure-registries: %s", e.Host, e.Host)
}

// hostSet is the insecure list: "host:port" entries match exactly, "host"
// entries match the host on any port.
type hostSet struct {
	exact   map[string]bool
	anyPort map[string]bool
}

func parseInsecure(list []string) (hostSet, error) {
	s := hostSet{exact: map[string]bool{}, anyPort: map[string]bool{}}
	for _, raw := range list {
		h := strings.ToLower(strings.TrimSpace(raw))
		if h == "" {
			continue
		}
		h = strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://")
		h = strings.TrimSuffix(h, "/")
		if h == "" || strings.ContainsAny(h, "/ \t?#@") {
			return hostSet{}, fmt.Errorf("input \"insecure-registries\": %q is not a registry host[:port]; list hosts such as 127.0.0.1:5000 or registry.local", raw)
		}
		if host, port, err := net.SplitHostPort(h); err == nil {
			s.exact[net.JoinHostPort(host, port)] = true
			continue
		}
		s.anyPort[strings.Trim(h, "[]")] = true
	}
	return s, nil
}

// contains reports whether hostport (as in a URL) is on the list. scheme,
// when given, supplies the default port of a URL without one.
func (s hostSet) contains(hostport, scheme string) bool {
	h := strings.ToLower(hostport)
	if s.exact[h] {
		return true
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.Trim(h, "[]"), ""
	}
	if s.anyPort[host] {
		return true
	}
	if port == "" {
		switch scheme {
		case "https":
			return s.exact[net.JoinHostPort(host, "443")]
		case "http":
			return s.exact[net.JoinHostPort(host, "80")]
		}
	}
	return false
}

// newTransport builds retrier → guard → (secure | insecure) base.
func (c *Client) newTransport() http.RoundTripper {
	base := c.opts.Transport
	if base == nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = proxyFromGetenv(c.getenv)
		base = t
	}
	secure, insecure := base, base
	if ht, ok := base.(*http.Transport); ok {
		s := ht.Clone()
		i := ht.Clone()
		if i.TLSClientConfig == nil {
			i.TLSClientConfig = &tls.Config{}
		}
		i.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // only for hosts the user listed in insecure-registries
		if c.opts.HTTP1 {
			forceHTTP1(s)
			forceHTTP1(i)
		}
		secure, insecure = s, i
	}
	return &retrier{
		inner:  &guard{insecure: c.insecure, secure: secure, insecureRT: insecure},
		policy: c.opts.Retry.withDefaults(),
		c:      c,
	}
}

func forceHTTP1(t *http.Transport) {
	var p http.Protocols
	p.SetHTTP1(true)
	t.Protocols = &p
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	if t.TLSClientConfig != nil {
		// A configured ALPN list offering h2 would negotiate HTTP/2 anyway.
		t.TLSClientConfig = t.TLSClientConfig.Clone()
		var protos []string
		for _, p := range t.TLSClientConfig.NextProtos {
			if p != "h2" {
				protos = append(protos, p)
			}
		}
		t.TLSClientConfig.NextProtos = protos
	}
}

// proxyFromGetenv honours HTTP(S)_PROXY/NO_PROXY read through getenv.
func proxyFromGetenv(getenv func(string) string) func(*http.Request) (*url.URL, error) {
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				return v
			}
		}
		return ""
	}
	f := (&httpproxy.Config{
		HTTPProxy:  first("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: first("HTTPS_PROXY", "https_proxy"),
		NoProxy:    first("NO_PROXY", "no_proxy"),
	}).ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return f(r.URL) }
}

// guard refuses plain HTTP to hosts not on the insecure list and routes
// listed hosts through the transport that skips TLS verification.
type guard struct {
	insecure   hostSet
	secure     http.RoundTripper
	insecureRT http.RoundTripper
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	listed := g.insecure.contains(req.URL.Host, req.URL.Scheme)
	if req.URL.Scheme == "http" && !listed {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &InsecureError{Host: req.URL.Host}
	}
	if listed {
		return g.insecureRT.RoundTrip(req)
	}
	return g.secure.RoundTrip(req)
}

// retrier retries one request on retryStatus and connection failures with
// exponential backoff and jitter, re-sending the body through GetBody.
//
// It also repairs re-sends by outer layers: go-containerregistry's bearer
// transport re-sends the very same *http.Request after a token refresh, whose
// body was consumed by the first send. The retrier sends a clone and marks
// the original's body as sent, so a second RoundTrip of it re-reads the body
// through GetBody instead of sending nothing.
type retrier struct {
	inner  http.RoundTripper
	policy Retry
	c      *Client
}

// sentBody marks a request body that was already sent once.
type sentBody struct{ io.ReadCloser }

func (r *retrier) RoundTrip(in *http.Request) (*http.Response, error) {
	ctx := in.Context()
	hasBody := in.Body != nil && in.Body != http.NoBody
	_, alreadySent := in.Body.(sentBody)
	replayable := !hasBody || in.GetBody != nil
	if alreadySent && in.GetBody == nil {
		return nil, fmt.Errorf("%s %s: the request body was already sent and cannot be re-sent", in.Method, redact.URL(in.URL.String()))
	}
	r.c.noteCredentials(in.Header.Get("Authorization"))
	max := r.policy.Attempts
	for attempt := 1; ; attempt++ {
		req := in.Clone(ctx)
		if hasBody && (attempt > 1 || alreadySent) {
			body, err := in.GetBody()
			if err != nil {
				return nil, fmt.Errorf("%s %s: re-reading the request body: %w", in.Method, redact.URL(in.URL.String()), err)
			}
			req.Body = body
		}
		resp, err := r.inner.RoundTrip(req)
		if hasBody && !alreadySent && attempt == 1 {
			in.Body = sentBody{in.Body}
		}
		var reason string
		var wait time.Duration
		switch {
		case err != nil:
			if !replayable || attempt >= max || !retryableError(ctx, err) {
				if attempt > 1 {
					return nil, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
				}
				return nil, err
			}
			reason = describeNetError(err)
		case retryStatus[resp.StatusCode] && replayable && attempt < max:
			reason = strconv.Itoa(resp.StatusCode)
			wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
			discard(resp)
		default:
			if resp.StatusCode >= http.StatusBadRequest {
				filterErrorBody(resp, r.c.sentCredentials())
			}
			if in.Method == http.MethodGet && resp.StatusCode == http.StatusOK && in.Header.Get("Range") == "" &&
				resp.Body != nil && resp.Body != http.NoBody {
				if !mutable(in.URL.Path) {
					resp.Body = newResumingBody(r, req, resp, attempt)
					return resp, nil
				}
				// A tag list or a manifest by tag may change between two
				// answers: it is read whole here, and a break in it asks
				// for all of it again instead of the rest of another.
				body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxMutableBody+1))
				resp.Body.Close()
				switch {
				case rerr == nil && len(body) > maxMutableBody:
					return nil, fmt.Errorf("GET %s: the answer is larger than %d MiB", redact.URL(in.URL.String()), maxMutableBody>>20)
				case rerr == nil:
					resp.Body = io.NopCloser(bytes.NewReader(body))
					resp.ContentLength = int64(len(body))
					return resp, nil
				case attempt >= max || !retryableError(ctx, rerr):
					return nil, fmt.Errorf("GET %s: reading the answer: %w", redact.URL(in.URL.String()), rerr)
				}
				reason = describeNetError(rerr) + " in the body"
				break
			}
			return resp, nil
		}
		d := r.backoff(attempt)
		if wait > d {
			d = min(wait, r.policy.Max)
		}
		r.c.log.Info(fmt.Sprintf("retrying %s %s after %s (attempt %d/%d)", in.Method, redact.URL(in.URL.String()), reason, attempt+1, max),
			"method", in.Method, "url", redact.URL(in.URL.String()), "reason", reason, "attempt", attempt+1, "attempts", max, "delay", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

// maxMutableBody bounds a tag list or manifest read whole (OCI bounds a
// manifest at 4 MiB; a page of tags is far smaller).
const maxMutableBody = 32 << 20

// mutable reports whether a GET of path answers content that may change
// between two requests: a tag list, the catalog, a manifest by tag (not by
// digest). Blobs and manifests by digest are content-addressed: a broken
// read of them resumes where it stopped.
func mutable(path string) bool {
	switch {
	case strings.HasSuffix(path, "/tags/list"), strings.HasSuffix(path, "/_catalog"):
		return true
	case strings.Contains(path, "/manifests/"):
		ref := path[strings.LastIndex(path, "/manifests/")+len("/manifests/"):]
		return !strings.Contains(ref, ":")
	}
	return false
}

// backoff is the delay before the attempt after this one.
func (r *retrier) backoff(attempt int) time.Duration {
	return backoff.Delay(r.policy.Initial, r.policy.Max, attempt)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryableError: refused connections (a registry restarting), connection
// resets, unexpected EOFs, broken pipes, timeouts of the connection (not of
// the caller's context).
func retryableError(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ie *InsecureError
	if errors.As(err, &ie) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "server closed idle connection", "transport connection broken", "GOAWAY", "REFUSED_STREAM"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func describeNetError(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused"):
		return "a refused connection"
	case errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "connection reset"):
		return "a connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "an unexpected EOF"
	case errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "broken pipe"):
		return "a broken pipe"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "a timeout"
	}
	return "a connection error"
}

// maxErrorBody bounds the part of an error response's body that reaches
// an error message.
const maxErrorBody = 16 << 10

// filterErrorBody replaces the body of an error response (which
// go-containerregistry copies into its errors) with its first maxErrorBody
// bytes, redacted (ci.Redact, with the credentials this client sent): a
// server that echoes the request's Authorization header gets nothing
// secret into an error or a log.
func filterErrorBody(resp *http.Response, sent []string) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	resp.Body.Close()
	text := string(b)
	if len(b) > maxErrorBody {
		text = strings.ToValidUTF8(text[:maxErrorBody], "") + " [… cut]"
	}
	text = redact.String(text, sent...)
	resp.Body = io.NopCloser(strings.NewReader(text))
	resp.ContentLength = int64(len(text))
	resp.Header.Del("Content-Length")
}

// noteCredentials remembers the credential of an Authorization header
// this client sends (a password, a token from a credential helper or a
// token server) and hands it to Options.Mask: from then on the platform
// layer masks it by value, and error bodies are filtered of it.
func (c *Client) noteCredentials(header string) {
	if header == "" {
		return
	}
	c.mu.Lock()
	if c.sent[header] {
		c.mu.Unlock()
		return
	}
	c.sent[header] = true
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	// Masked: the credential as sent (a base64 pair, a token) and a Basic
	// password; the longer forms that contain them are filtered only.
	values, masked := []string{header}, []string{cred}
	if strings.EqualFold(scheme, "basic") {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
			if _, pass, ok := strings.Cut(string(b), ":"); ok {
				values = append(values, string(b))
				masked = append(masked, pass)
			}
		}
	}
	var fresh []string
	for _, v := range append(values, masked...) {
		if len(v) < minSecret || slices.Contains(c.secrets, v) {
			continue
		}
		c.secrets = append(c.secrets, v)
		if slices.Contains(masked, v) {
			fresh = append(fresh, v)
		}
	}
	// Longest first: a password inside "user:password" must not be
	// replaced before the pair is.
	slices.SortFunc(c.secrets, func(a, b string) int { return len(b) - len(a) })
	c.mu.Unlock()
	if c.opts.Mask != nil {
		for _, v := range fresh {
			c.opts.Mask(v)
		}
	}
}

// minSecret is the shortest credential value masked by value.
const minSecret = 4

// sentCredentials are the credential values this client has sent.
func (c *Client) sentCredentials() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.secrets)
}

// restartUpload is go-containerregistry's retry predicate: per-request
// retries happen in the retrier, so ggcr only restarts a whole blob upload
// when the registry lost or rejected the upload session.
func restartUpload(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.BlobUploadInvalidErrorCode || d.Code == transport.BlobUploadUnknownErrorCode {
			return true
		}
	}
	return false
}
