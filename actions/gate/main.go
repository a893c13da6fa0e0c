// Command gate: gate runs lint and test commands, reads their reports, enforces thresholds and publishes the results natively. See docs/gate.md.
package main

import (
	"os"

	"github.com/hoist-ci/hoist/internal/command/gate"
)

func main() {
	os.Exit(gate.Main())
}
