package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/backoff"
	"github.com/hoist-ci/hoist/internal/redact"
)

// resumingBody is the body of a GET answered 200. A read that fails with a
// connection error (a reset or an early end in the middle of the body) asks
// again for the rest: with "Range: bytes=N-" where the registry announced
// byte ranges (Accept-Ranges: bytes), else for the whole body again, of
// which the first N bytes are skipped. Either way the new answer must be
// the same content (same Docker-Content-Digest, ETag and length) or the
// read fails. The resumes count against the request's attempts.
type resumingBody struct {
	r        *retrier
	req      *http.Request // the request that got the first answer
	body     io.ReadCloser
	read     int64 // bytes handed to the caller
	first    http.Header
	length   int64 // the first answer's Content-Length (-1: unknown)
	ranges   bool  // the registry serves byte ranges of this body
	attempts int   // attempts used by the request so far
}

func newResumingBody(r *retrier, req *http.Request, resp *http.Response, attempts int) *resumingBody {
	return &resumingBody{
		r:        r,
		req:      req,
		body:     resp.Body,
		first:    resp.Header,
		length:   resp.ContentLength,
		ranges:   strings.EqualFold(strings.TrimSpace(resp.Header.Get("Accept-Ranges")), "bytes") && !resp.Uncompressed,
		attempts: attempts,
	}
}

func (b *resumingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.read += int64(n)
	if err == nil || errors.Is(err, io.EOF) || !retryableError(b.req.Context(), err) {
		return n, err
	}
	if rerr := b.resume(err); rerr != nil {
		return n, rerr
	}
	if n > 0 {
		return n, nil
	}
	return b.Read(p)
}

func (b *resumingBody) Close() error { return b.body.Close() }

// resume replaces b.body with an answer that continues at b.read.
func (b *resumingBody) resume(cause error) error {
	ctx := b.req.Context()
	max := b.r.policy.Attempts
	url := redact.URL(b.req.URL.String())
	reason := describeNetError(cause) + " at byte " + strconv.FormatInt(b.read, 10) + " of the body"
	var wait time.Duration // a Retry-After of the last answer
	for b.attempts < max {
		b.attempts++
		d := b.r.backoff(b.attempts - 1)
		if wait > d {
			d = min(wait, b.r.policy.Max)
		}
		how := "asking for the rest with a Range request"
		if !b.ranges {
			how = "reading it again from the start (no byte ranges here)"
		}
		b.r.c.log.Info(fmt.Sprintf("retrying GET %s after %s, %s (attempt %d/%d)", url, reason, how, b.attempts, max),
			"method", http.MethodGet, "url", url, "reason", reason, "offset", b.read, "attempt", b.attempts, "attempts", max, "delay", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return err
		}
		req := b.req.Clone(ctx)
		useRange := b.ranges && b.read > 0
		if useRange {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(b.read, 10)+"-")
		}
		resp, err := b.r.inner.RoundTrip(req)
		if err != nil {
			if retryableError(ctx, err) {
				cause, reason = err, describeNetError(err)
				continue
			}
			return fmt.Errorf("resuming GET %s at byte %d: %w", url, b.read, err)
		}
		if retryStatus[resp.StatusCode] {
			cause = fmt.Errorf("the registry answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
			reason = strconv.Itoa(resp.StatusCode)
			wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
			discard(resp)
			continue
		}
		if err := b.continues(resp, useRange); err != nil {
			discard(resp)
			return fmt.Errorf("resuming GET %s at byte %d: %w", url, b.read, err)
		}
		if resp.StatusCode == http.StatusOK && b.read > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, b.read); err != nil {
				resp.Body.Close()
				if retryableError(ctx, err) {
					cause, reason = err, describeNetError(err)
					continue
				}
				return fmt.Errorf("resuming GET %s at byte %d: %w", url, b.read, err)
			}
		}
		_ = b.body.Close()
		b.body = resp.Body
		return nil
	}
	return fmt.Errorf("giving up after %d attempts: GET %s broke off at byte %d: %w", b.attempts, url, b.read, cause)
}

// continues checks that resp carries the same content as the first answer,
// from byte b.read (206) or from the start (200).
func (b *resumingBody) continues(resp *http.Response, useRange bool) error {
	for _, h := range []string{"Docker-Content-Digest", "ETag"} {
		if was, now := b.first.Get(h), resp.Header.Get(h); was != "" && now != "" && was != now {
			return fmt.Errorf("the content changed while it was read (%s %s, now %s)", h, was, now)
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if b.length >= 0 && resp.ContentLength >= 0 && resp.ContentLength != b.length {
			return fmt.Errorf("the content changed while it was read (%d bytes, now %d)", b.length, resp.ContentLength)
		}
		return nil
	case http.StatusPartialContent:
		if !useRange {
			return errors.New("the registry answered 206 to a request without Range")
		}
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != b.read {
			return fmt.Errorf("the registry answered a range that does not start at byte %d (Content-Range %q)", b.read, resp.Header.Get("Content-Range"))
		}
		if b.length >= 0 && total >= 0 && total != b.length {
			return fmt.Errorf("the content changed while it was read (%d bytes, now %d)", b.length, total)
		}
		return nil
	}
	return fmt.Errorf("the registry answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be *: -1).
func contentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	span, size, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if size = strings.TrimSpace(size); size != "*" {
		if total, err = strconv.ParseInt(size, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
