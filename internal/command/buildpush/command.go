// Package buildpush is the build-push command: it reads the job's inputs
// (or kaniko's executor flags), runs components/build-push and returns its
// outputs. actions/build-push and the multi-call actions/hoist run it.
// See docs/build-push.md.
package buildpush

import (
	"context"
	"fmt"
	"os"

	buildpush "github.com/hoist-ci/hoist/components/build-push"
	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Prepare readies the process for a build before anything else runs: it
// serves as the sandbox's init step when RUN re-executes the binary so
// (then it returns the exit code and done), moves the arguments and the
// environment out of /proc (re-executing the binary), and, when not root,
// continues as root of a user namespace of its own (done: the parent
// returns the child's exit code).
func Prepare() (code int, done bool) {
	// RUN re-executes this binary as the sandbox's init.
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		return 125, true
	}
	// No RUN may read a credential in /proc/<pid>/environ or cmdline:
	// the arguments and environment move into a sealed memory file.
	if err := sandbox.Conceal(); err != nil {
		fmt.Fprintln(os.Stderr, "build-push: warning:", err)
	}
	// Not root: the build runs as root of a user namespace of its own.
	return sandbox.Rootless(sandbox.RootlessOptions{})
}

// Main is build-push's main: Prepare, then the build in the process's
// environment. It returns the exit code.
func Main() int {
	if code, done := Prepare(); done {
		return code
	}
	return ci.Exec(spec.BuildPush(), Run)
}

// Run builds and pushes with the job's inputs and returns the outputs.
func Run(ctx context.Context, j *ci.Job) (map[string]string, error) {
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
