package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/hoist-ci/hoist/internal/sandbox"
)

// TestMain lets the test binary serve as the sandbox's init step, as the
// build-push binary's main does.
func TestMain(m *testing.M) {
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	os.Exit(m.Run())
}
