// Command retag: retag gives an image already in a registry its release tags without rebuilding it. See docs/retag.md.
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/command/retag"
)

func main() {
	os.Exit(retag.Main())
}
