// Command build-push builds an image from a Dockerfile without a Docker
// daemon and pushes it. It accepts kaniko's executor flags too. See
// docs/build-push.md.
package main

import (
	"context"
	"fmt"
	"os"

	buildpush "github.com/hoist-ci/hoist/components/build-push"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/spec"
)

func main() {
	// RUN re-executes this binary as the sandbox's init.
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	// No RUN may read a credential in /proc/<pid>/environ or cmdline:
	// the arguments and environment move into a sealed memory file.
	if err := sandbox.Conceal(); err != nil {
		fmt.Fprintln(os.Stderr, "build-push: warning:", err)
	}
	// Not root: the build runs as root of a user namespace of its own.
	if code, done := sandbox.Rootless(sandbox.RootlessOptions{}); done {
		os.Exit(code)
	}
	os.Exit(ci.Exec(spec.BuildPush(), run))
}

func run(ctx context.Context, j *ci.Job) (map[string]string, error) {
	src, err := resolveContext(ctx, j)
	if err != nil {
		return nil, err
	}
	defer src.close(j)
	opts, err := options(j, src)
	if err != nil {
		return nil, err
	}
	res, err := buildpush.Run(ctx, opts)
	if res.Digest != "" {
		if serr := j.AddSummary(res.Markdown()); serr != nil {
			j.Log.Warn("writing the step summary", "error", serr)
		}
	}
	return res.Outputs(), err
}
