package buildcontext

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// S3: one signed GET (Signature Version 4, the SDK's signer) with the SDK's
// credential chain — environment, shared config and credentials files,
// web identity (EKS IRSA), SSO, ECS and EC2 instance roles — without the S3
// service client, which would add about 1 MB to build-push for a single
// GET. The variables are kaniko's: S3_ENDPOINT for an S3-compatible server,
// S3_FORCE_PATH_STYLE=true for path-style addressing, AWS_REGION.

// s3Location is where an object is reached.
type s3Location struct {
	bucket, key string
	endpoint    *url.URL // nil: AWS
	pathStyle   bool
	region      string
}

func (l s3Location) url() string {
	key := escapeKey(l.key)
	if l.endpoint != nil {
		e := *l.endpoint
		base := strings.TrimSuffix(e.Path, "/")
		if l.pathStyle {
			return e.Scheme + "://" + e.Host + base + "/" + l.bucket + "/" + key
		}
		return e.Scheme + "://" + l.bucket + "." + e.Host + base + "/" + key
	}
	host := "s3." + l.region + ".amazonaws.com"
	if l.pathStyle || strings.Contains(l.bucket, ".") {
		return "https://" + host + "/" + l.bucket + "/" + key
	}
	return "https://" + l.bucket + "." + host + "/" + key
}

// escapeKey escapes an object key for a URL path as AWS's UriEncode does
// (every byte but A-Z a-z 0-9 - _ . ~ as %XX), keeping its slashes: S3
// computes the canonical URI of the signature that way from the key it
// decoded, so a key escaped more lightly (url.PathEscape leaves "=", "@",
// "+" ...) would not match its signature.
func escapeKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// splitBucket reads bucket/key.
func splitBucket(scheme, loc string) (string, string, error) {
	bucket, key, ok := strings.Cut(loc, "/")
	if !ok || bucket == "" || strings.Trim(key, "/") == "" {
		return "", "", fmt.Errorf("want %s://<bucket>/<path to .tar.gz>", scheme)
	}
	return bucket, key, nil
}

func openS3(ctx context.Context, src Source, o Options) (io.ReadCloser, error) {
	bucket, key, err := splitBucket("s3", src.Location)
	if err != nil {
		return nil, err
	}
	loc := s3Location{bucket: bucket, key: key, pathStyle: strings.EqualFold(o.Getenv("S3_FORCE_PATH_STYLE"), "true")}
	if ep := firstSet(o.Getenv, "S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"); ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "https://" + ep
		}
		if loc.endpoint, err = url.Parse(ep); err != nil || loc.endpoint.Host == "" {
			return nil, fmt.Errorf("S3_ENDPOINT %q is not a URL such as https://minio.example.com:9000", ep)
		}
	}
	creds, region, err := awsCredentials(ctx, o)
	if err != nil {
		return nil, err
	}
	loc.region = firstSet(o.Getenv, "AWS_REGION", "AWS_DEFAULT_REGION")
	if loc.region == "" {
		loc.region = region
	}
	if loc.region == "" {
		loc.region = "us-east-1"
	}
	signer := v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })
	what := "s3://" + bucket + "/" + key
	for attempt := 0; ; attempt++ {
		obj, err := openObject(ctx, o.HTTP, what, func(ctx context.Context, offset int64, etag string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.url(), nil)
			if err != nil {
				return nil, err
			}
			rangeHeaders(req, offset, etag)
			if creds != nil {
				c, err := creds.Retrieve(ctx)
				if err != nil {
					return nil, fmt.Errorf("AWS credentials: %w", err)
				}
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				if err := signer.SignHTTP(ctx, c, req, "UNSIGNED-PAYLOAD", "s3", loc.region, time.Now().UTC()); err != nil {
					return nil, fmt.Errorf("signing the S3 request: %w", err)
				}
			}
			return req, nil
		}, func(resp *http.Response) error { return s3Failure(resp, loc, creds == nil) })
		var moved *s3Moved
		if errors.As(err, &moved) && attempt == 0 && moved.region != loc.region {
			o.Log.Debug("the bucket is in another region", "bucket", bucket, "region", moved.region)
			loc.region = moved.region
			continue
		}
		return obj, err
	}
}

// awsCredentials resolves the AWS credentials: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY from Options.Getenv, else the SDK's default chain.
// No credentials anywhere gives nil: the request goes unsigned (a public
// bucket).
func awsCredentials(ctx context.Context, o Options) (aws.CredentialsProvider, string, error) {
	if id, secret := o.Getenv("AWS_ACCESS_KEY_ID"), o.Getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return credentials.NewStaticCredentialsProvider(id, secret, o.Getenv("AWS_SESSION_TOKEN")), "", nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, cfg.Region, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		o.Log.Warn("no AWS credentials found: reading the context without signing (a public bucket)", "error", err.Error())
		return nil, cfg.Region, nil
	}
	return aws.NewCredentialsCache(cfg.Credentials), cfg.Region, nil
}

// s3Moved says the bucket lives in another region.
type s3Moved struct{ region string }

func (m *s3Moved) Error() string { return "the bucket is in region " + m.region }

type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func s3Failure(resp *http.Response, loc s3Location, anonymous bool) error {
	if r := resp.Header.Get("X-Amz-Bucket-Region"); r != "" && (resp.StatusCode == http.StatusMovedPermanently || resp.StatusCode == http.StatusBadRequest) {
		return &s3Moved{region: r}
	}
	var e s3Error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_ = xml.Unmarshal(body, &e)
	what := "s3://" + loc.bucket + "/" + loc.key
	msg := fmt.Sprintf("GET %s: HTTP %s", what, resp.Status)
	if e.Code != "" {
		msg = fmt.Sprintf("GET %s: %s: %s (HTTP %d)", what, e.Code, strings.TrimSpace(e.Message), resp.StatusCode)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		msg += ": check the bucket and the key the pipeline uploaded"
	case resp.StatusCode == http.StatusForbidden && anonymous:
		msg += ": no AWS credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the agent an IAM role (IRSA, instance profile)"
	case resp.StatusCode == http.StatusForbidden:
		msg += ": the credentials may not read this object (s3:GetObject), or AWS_REGION does not match the bucket"
	}
	return errors.New(msg)
}

// firstSet returns the first of the variables that is set.
func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}
