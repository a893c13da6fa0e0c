package publish

import (
	"context"
	"fmt"

	"github.com/hoist-ci/hoist/internal/bucket"
	"github.com/hoist-ci/hoist/internal/fluxartifact"
)

// syncBucket makes the bucket prefix hold exactly the content's files.
func syncBucket(ctx context.Context, opts Options, tree *fluxartifact.Tree, res *Result) error {
	loc, err := bucket.ParseURL(opts.Bucket)
	if err != nil {
		return fmt.Errorf("input \"bucket\": %w", err)
	}
	files := make([]bucket.File, 0, len(tree.Files))
	for _, f := range tree.Regular() {
		files = append(files, bucket.File{Path: f.Path, Data: f.Data})
	}
	res.BucketURL = loc.String()
	res.Bucket, err = bucket.Sync(ctx, opts.BucketStore, loc, files, opts.DryRun, opts.Log)
	return err
}
