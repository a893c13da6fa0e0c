package buildpush

import (
	"context"
	"fmt"
	"os"
	"strings"

	units "github.com/docker/go-units"

	"github.com/hoist-ci/hoist/internal/buildcontext"
	"github.com/hoist-ci/hoist/internal/ci"
)

// buildSource is where the build reads: the context directory and the
// Dockerfile (for a local context as given: the component resolves it as
// kaniko does), and the fetched remote context to remove afterwards.
type buildSource struct {
	dir, dockerfile string
	fetched         *buildcontext.Context
}

func (s buildSource) close(j *ci.Job) {
	if err := s.fetched.Close(); err != nil {
		j.Log.Warn("removing the fetched build context", "error", err)
	}
}

// resolveContext reads the context inputs. A local directory (dir:// as
// kaniko writes it) is read in place; a remote context — s3://, gs://,
// Azure Blob or another https:// URL, tar://, git:// — is fetched and
// unpacked first, and a relative file is then taken inside it.
// context-sub-path narrows either to a directory inside.
func resolveContext(ctx context.Context, j *ci.Job) (buildSource, error) {
	spec, sub, file := j.String("context"), j.String("context-sub-path"), j.String("file")
	if !buildcontext.IsRemote(spec) {
		dir := strings.TrimPrefix(spec, "dir://")
		if sub != "" {
			d, _, err := buildcontext.Resolve(dir, sub, "")
			if err != nil {
				return buildSource{}, &ci.UsageError{Err: err}
			}
			dir = d
		}
		return buildSource{dir: dir, dockerfile: file}, nil
	}
	max, err := units.RAMInBytes(j.String("context-max-size"))
	if err != nil || max <= 0 {
		return buildSource{}, &ci.UsageError{Err: fmt.Errorf("input \"context-max-size\": %q is not a size; write 512MiB or 4GiB", j.String("context-max-size"))}
	}
	if _, err := buildcontext.Parse(spec, j.Getenv); err != nil {
		return buildSource{}, &ci.UsageError{Err: fmt.Errorf("input \"context\": %w", err)}
	}
	fetched, err := buildcontext.Fetch(ctx, spec, buildcontext.Options{MaxSize: max, Getenv: j.Getenv, Stdin: os.Stdin, Log: j.Log})
	if err != nil {
		return buildSource{}, err
	}
	dir, dockerfile, err := buildcontext.Resolve(fetched.Dir, sub, file)
	if err != nil {
		_ = fetched.Close()
		return buildSource{}, &ci.UsageError{Err: err}
	}
	return buildSource{dir: dir, dockerfile: dockerfile, fetched: fetched}, nil
}
