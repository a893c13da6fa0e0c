package buildcontext

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// GCS: the JSON API's media download (GET /storage/v1/b/<bucket>/o/<object>
// ?alt=media) with a token from Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS — a service account key or a workload
// identity federation config —, gcloud's credentials, or the metadata
// server on GCE and GKE), as kaniko reads gs:// contexts, without the
// Cloud Storage client library. GOOGLE_OAUTH_ACCESS_TOKEN gives a token
// directly; STORAGE_EMULATOR_HOST (the client libraries' variable) points
// at an emulator, reached without credentials.

// gcsReadScope is the OAuth scope of a read.
const gcsReadScope = "https://www.googleapis.com/auth/devstorage.read_only"

func openGCS(ctx context.Context, src Source, o Options) (io.ReadCloser, error) {
	bucket, object, err := splitBucket("gs", src.Location)
	if err != nil {
		return nil, err
	}
	base := "https://storage.googleapis.com"
	var tokens oauth2.TokenSource
	switch emu := o.Getenv("STORAGE_EMULATOR_HOST"); {
	case emu != "":
		base = emu
		if !strings.Contains(base, "://") {
			base = "http://" + base
		}
		base = strings.TrimRight(base, "/")
	case o.Getenv("GOOGLE_OAUTH_ACCESS_TOKEN") != "":
		tokens = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.Getenv("GOOGLE_OAUTH_ACCESS_TOKEN"), TokenType: "Bearer"})
	default:
		tctx := context.WithValue(ctx, oauth2.HTTPClient, o.HTTP)
		tokens, err = google.DefaultTokenSource(tctx, gcsReadScope)
		if err != nil {
			return nil, fmt.Errorf("finding Google credentials (set GOOGLE_APPLICATION_CREDENTIALS to a service account key or a workload identity federation file, or run on GCE/GKE with a service account): %w", err)
		}
	}
	u := base + "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(object) + "?alt=media"
	what := "gs://" + bucket + "/" + object
	return openObject(ctx, o.HTTP, what, func(ctx context.Context, offset int64, etag string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		rangeHeaders(req, offset, etag)
		if tokens != nil {
			t, err := tokens.Token()
			if err != nil {
				return nil, fmt.Errorf("getting a Google access token: %w", err)
			}
			t.SetAuthHeader(req)
		}
		return req, nil
	}, func(resp *http.Response) error { return gcsFailure(resp, what) })
}

// gcsFailure reads the JSON API's error: {"error":{"code":404,"message":"..."}}.
func gcsFailure(resp *http.Response, what string) error {
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	msg := fmt.Sprintf("GET %s: HTTP %s", what, resp.Status)
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = fmt.Sprintf("GET %s: %s (HTTP %d)", what, e.Error.Message, resp.StatusCode)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		msg += ": check the bucket and the object the pipeline uploaded"
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += ": the credentials may not read this object (storage.objects.get)"
	}
	return errors.New(msg)
}
