package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// asMain makes the test binary run build-push's main (tests start it so,
// to see the process a user starts: its environment, its pid).
const asMain = "HOIST_TEST_AS_BUILD_PUSH"

// TestMain lets the test binary serve as the sandbox's init step, as the
// build-push binary's main does, and as build-push itself.
func TestMain(m *testing.M) {
	testrig.NobodyStep()
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	if os.Getenv(asMain) != "" || sandbox.Reexecuted() {
		main()
		return
	}
	os.Exit(m.Run())
}
