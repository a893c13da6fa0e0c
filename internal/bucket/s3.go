package bucket

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Options reach an S3-compatible bucket.
type S3Options struct {
	// Endpoint is an S3-compatible service URL (https://minio.example.com);
	// empty means AWS S3. A custom endpoint is addressed path-style
	// (endpoint/bucket/key), which every S3-compatible store serves.
	Endpoint string
	// Region defaults to us-east-1.
	Region string
	// Static credentials; empty means the AWS default chain (environment,
	// shared config, web identity, instance role).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

type s3Store struct {
	c      *s3.Client
	bucket string
}

// NewS3 returns the Store of one bucket.
func NewS3(ctx context.Context, bucket string, o S3Options) (Store, error) {
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	var cfg aws.Config
	switch {
	case o.AccessKeyID != "" || o.SecretAccessKey != "":
		if o.AccessKeyID == "" || o.SecretAccessKey == "" {
			return nil, errors.New("S3 static credentials need both bucket-access-key-id and bucket-secret-access-key")
		}
		cfg = aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)}
	default:
		var err error
		cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("loading the AWS credential chain: %w", err)
		}
	}
	c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(strings.TrimSuffix(o.Endpoint, "/"))
			so.UsePathStyle = true
		}
		// Content-MD5 guards uploads; the newer CRC trailers with
		// aws-chunked bodies are not served by every S3-compatible store.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &s3Store{c: c, bucket: bucket}, nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	pager := s3.NewListObjectsV2Paginator(s.c, in)
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, s3Error(err)
		}
		for _, o := range page.Contents {
			obj := Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)}
			// A single-part upload's ETag is the content's MD5 (not under
			// SSE-KMS, whose objects are then always uploaded again).
			etag := strings.Trim(aws.ToString(o.ETag), `"`)
			if len(etag) == 32 {
				if sum, err := hex.DecodeString(etag); err == nil {
					obj.MD5 = sum
				}
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

func (s *s3Store) Put(ctx context.Context, key string, data, sum []byte) error {
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum)),
	})
	return s3Error(err)
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	return s3Error(err)
}

// s3Error keeps the service's error code and message, which say what to
// fix, without the SDK's request dump.
func s3Error(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("S3 answered %s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}
