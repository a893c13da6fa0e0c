// Package bucket syncs a set of files into an object store prefix — an
// Azure Blob Storage container or an S3-compatible bucket — the way Flux's
// Bucket source reads it back: one object per file, keyed by its path under
// the prefix. A sync uploads only new and changed files (by MD5) and then
// deletes the objects under the prefix that the files no longer have.
package bucket

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // MD5 is what both stores report for change detection, not a security check.
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Schemes of a bucket URL.
const (
	SchemeAzure = "azure"
	SchemeS3    = "s3"
)

// Location is a parsed bucket URL: azure://CONTAINER[/PREFIX] or
// s3://BUCKET[/PREFIX].
type Location struct {
	Scheme string
	Bucket string
	// Prefix has no leading or trailing slash; empty is the whole bucket.
	Prefix string
}

func (l Location) String() string {
	if l.Prefix == "" {
		return l.Scheme + "://" + l.Bucket
	}
	return l.Scheme + "://" + l.Bucket + "/" + l.Prefix
}

// Key is the object key of a file path under the prefix.
func (l Location) Key(p string) string {
	if l.Prefix == "" {
		return p
	}
	return l.Prefix + "/" + p
}

// ParseURL parses a bucket URL.
func ParseURL(s string) (Location, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != SchemeAzure && u.Scheme != SchemeS3) || u.RawQuery != "" || u.User != nil {
		return Location{}, fmt.Errorf("%q is not a bucket URL: write azure://CONTAINER/PREFIX (Azure Blob Storage) or s3://BUCKET/PREFIX (S3-compatible)", s)
	}
	prefix := strings.Trim(u.Path, "/")
	for _, part := range strings.Split(prefix, "/") {
		if part == "." || part == ".." || (part == "" && prefix != "") {
			return Location{}, fmt.Errorf("%q: the prefix %q has an empty, . or .. part", s, prefix)
		}
	}
	return Location{Scheme: u.Scheme, Bucket: u.Host, Prefix: prefix}, nil
}

// Object is one object of a listing.
type Object struct {
	Key  string
	Size int64
	// MD5 is the content's MD5 when the store reports it (nil otherwise:
	// such an object is always uploaded again).
	MD5 []byte
}

// Store is an object store, scoped to one bucket or container.
type Store interface {
	// List returns every object whose key starts with prefix.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Put writes an object; md5 is the content's MD5 for the store to keep
	// and verify.
	Put(ctx context.Context, key string, data, md5 []byte) error
	Delete(ctx context.Context, key string) error
}

// File is one file to sync: its slash-separated path and content.
type File struct {
	Path string
	Data []byte
}

// SyncResult counts what a sync did (or, in a dry run, would do).
type SyncResult struct {
	Uploaded      int
	Deleted       int
	Unchanged     int
	BytesUploaded int64
}

// parallel bounds concurrent object requests.
const parallel = 8

// Sync makes the objects under loc's prefix equal files: uploads what is
// new or changed, then deletes what files no longer have. Uploads come
// first, so a reader during the sync never misses a file the new content
// has.
func Sync(ctx context.Context, store Store, loc Location, files []File, dryRun bool, log *slog.Logger) (SyncResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	listPrefix := ""
	if loc.Prefix != "" {
		listPrefix = loc.Prefix + "/"
	}
	existing, err := store.List(ctx, listPrefix)
	if err != nil {
		return SyncResult{}, fmt.Errorf("listing %s: %w", loc, err)
	}
	remote := make(map[string]Object, len(existing))
	for _, o := range existing {
		remote[o.Key] = o
	}

	var res SyncResult
	type upload struct {
		key  string
		data []byte
		sum  []byte
	}
	var uploads []upload
	want := make(map[string]bool, len(files))
	for _, f := range files {
		key := loc.Key(f.Path)
		want[key] = true
		sum := md5.Sum(f.Data) //nolint:gosec // see the import
		if o, ok := remote[key]; ok && o.Size == int64(len(f.Data)) && bytes.Equal(o.MD5, sum[:]) {
			res.Unchanged++
			continue
		}
		uploads = append(uploads, upload{key: key, data: f.Data, sum: sum[:]})
	}
	var deletes []string
	for key := range remote {
		if !want[key] {
			deletes = append(deletes, key)
		}
	}
	slices.Sort(deletes)

	if dryRun {
		for _, u := range uploads {
			log.Info("dry run: would upload", "object", u.key, "bytes", len(u.data))
			res.BytesUploaded += int64(len(u.data))
		}
		for _, k := range deletes {
			log.Info("dry run: would delete", "object", k)
		}
		res.Uploaded, res.Deleted = len(uploads), len(deletes)
		return res, nil
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, u := range uploads {
		g.Go(func() error {
			if err := store.Put(gctx, u.key, u.data, u.sum); err != nil {
				return fmt.Errorf("uploading %s to %s: %w", u.key, loc, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("%w (nothing was deleted; a new run uploads what is missing)", err)
	}
	res.Uploaded = len(uploads)
	for _, u := range uploads {
		res.BytesUploaded += int64(len(u.data))
	}

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, k := range deletes {
		g.Go(func() error {
			if err := store.Delete(gctx, k); err != nil {
				return fmt.Errorf("deleting %s from %s: %w", k, loc, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	res.Deleted = len(deletes)
	log.Info("bucket synced", "bucket", loc.String(), "uploaded", res.Uploaded, "deleted", res.Deleted, "unchanged", res.Unchanged, "bytes", res.BytesUploaded)
	return res, nil
}
