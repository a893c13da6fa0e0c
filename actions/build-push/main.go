// Command build-push builds an image from a Dockerfile without a Docker
// daemon and pushes it. It accepts kaniko's executor flags too. See
// docs/build-push.md.
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/command/buildpush"
)

func main() {
	os.Exit(buildpush.Main())
}
