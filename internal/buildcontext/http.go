package buildcontext

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/backoff"
	"github.com/hoist-ci/hoist/internal/redact"
)

// remoteObject is a remote object read as one stream: a GET, and when the
// connection breaks midway, ranged GETs from where it broke (If-Match the
// first response's ETag, so a replaced object is not stitched together).
type remoteObject struct {
	ctx     context.Context
	client  *http.Client
	request func(ctx context.Context, offset int64, etag string) (*http.Request, error)
	failure func(*http.Response) error
	what    string

	body    io.ReadCloser
	offset  int64
	etag    string
	resumes int
}

const (
	maxResumes = 4
	maxTries   = 3
)

// openObject sends the first GET. request builds a signed request for the
// bytes from offset (a Range and If-Match header when offset > 0); failure
// turns a response that is not a success into an error naming the cause.
func openObject(ctx context.Context, client *http.Client, what string,
	request func(ctx context.Context, offset int64, etag string) (*http.Request, error),
	failure func(*http.Response) error) (*remoteObject, error) {
	o := &remoteObject{ctx: ctx, client: client, request: request, failure: failure, what: what}
	if err := o.get(); err != nil {
		return nil, err
	}
	return o, nil
}

// get sends a GET for the bytes from o.offset, retrying what is worth
// retrying (connection errors, 5xx, 429).
func (o *remoteObject) get() error {
	var last error
	for try := 0; try < maxTries; try++ {
		if try > 0 {
			if err := backoff.Sleep(o.ctx, time.Duration(try*try)*500*time.Millisecond); err != nil {
				return err
			}
		}
		req, err := o.request(o.ctx, o.offset, o.etag)
		if err != nil {
			return err
		}
		resp, err := o.client.Do(req)
		if err != nil {
			if o.ctx.Err() != nil {
				return o.ctx.Err()
			}
			last = fmt.Errorf("GET %s: %w", o.what, scrubURLError(err))
			var cert *tls.CertificateVerificationError
			if errors.As(err, &cert) {
				return last // retrying changes nothing
			}
			continue
		}
		want := http.StatusOK
		if o.offset > 0 {
			want = http.StatusPartialContent
		}
		if resp.StatusCode == want {
			if o.offset == 0 {
				o.etag = resp.Header.Get("ETag")
			}
			o.body = resp.Body
			return nil
		}
		err = o.failure(resp)
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			last = err
			continue
		}
		return err
	}
	return last
}

func (o *remoteObject) Read(p []byte) (int, error) {
	for {
		n, err := o.body.Read(p)
		o.offset += int64(n)
		if err == nil || errors.Is(err, io.EOF) || n > 0 {
			return n, err
		}
		if o.ctx.Err() != nil || o.resumes >= maxResumes {
			return 0, fmt.Errorf("reading %s at byte %d: %w", o.what, o.offset, scrubURLError(err))
		}
		o.resumes++
		o.body.Close()
		if gerr := o.get(); gerr != nil {
			return 0, fmt.Errorf("resuming %s at byte %d after %v: %w", o.what, o.offset, scrubURLError(err), gerr)
		}
	}
}

func (o *remoteObject) Close() error {
	if o.body == nil {
		return nil
	}
	return o.body.Close()
}

// rangeHeaders sets Range and If-Match for a resumed GET.
func rangeHeaders(req *http.Request, offset int64, etag string) {
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		if etag != "" {
			req.Header.Set("If-Match", etag)
		}
	}
}

// openHTTPS reads a tarball from an HTTPS server (kaniko's https:// context).
func openHTTPS(ctx context.Context, src Source, o Options) (io.ReadCloser, error) {
	u := src.Raw
	return openObject(ctx, o.HTTP, redact.URL(u), func(ctx context.Context, offset int64, etag string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", redact.URL(u), scrubURLError(err))
		}
		rangeHeaders(req, offset, etag)
		return req, nil
	}, func(resp *http.Response) error {
		return fmt.Errorf("GET %s: HTTP %s%s", redact.URL(u), resp.Status, bodyHint(resp))
	})
}

// bodyHint is the start of an error response's body, for the message.
func bodyHint(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return ""
	}
	return ": " + s
}

// scrubURLError keeps a URL's credentials out of an error from net/http,
// which quotes the URL it was given.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redact.URL(ue.URL), ue.Err)
	}
	return err
}
