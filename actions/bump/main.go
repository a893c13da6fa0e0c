// Command bump: bump rewrites image references in GitOps manifests, byte-exact, and lands the commit without losing a concurrent update. See docs/bump.md.
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/command/bump"
)

func main() {
	os.Exit(bump.Main())
}
