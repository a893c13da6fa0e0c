// Command publish: publish packages deployment configuration as a Flux OCI artifact or into a blob bucket, for pull-based deploys. See docs/publish.md.
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/command/publish"
)

func main() {
	os.Exit(publish.Main())
}
