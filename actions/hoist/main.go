// Command hoist is every tool in one binary: called through a link named
// for a tool (/usr/local/bin/build-push → hoist, /kaniko/executor) or as
// `hoist <tool> --flag …`, it runs that tool. The image ships it with a
// link per tool.
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/multicall"
)

func main() {
	os.Exit(multicall.Main(os.Args, os.Stdout, os.Stderr))
}
