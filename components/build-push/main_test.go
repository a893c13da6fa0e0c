package buildpush

import (
	"fmt"
	"os"
	"testing"

	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestMain lets the test binary serve as the sandbox's init step (RUN
// under namespaces re-executes the running binary), as the build-push
// main does.
//
// Run as uid 65534 by testrig.AsNobody (TestRootless), it first enters a
// user namespace as build-push's main does.
func TestMain(m *testing.M) {
	testrig.NobodyStep()
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	if mode := os.Getenv("HOIST_TEST_ROOTLESS"); mode != "" || sandbox.Reexecuted() {
		if code, done := sandbox.Rootless(sandbox.RootlessOptions{NoSubordinateIDs: os.Getenv("HOIST_TEST_ROOTLESS") == "single"}); done {
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}
