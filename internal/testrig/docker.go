package testrig

import (
	"os"
	"testing"
)

// RequireDocker returns the rig's Docker engine (DOCKER_HOST). A test that
// needs it is skipped in -short mode and fails when the rig is not up: in
// CI a missing engine is a failure, never a silent skip.
func RequireDocker(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the rig's Docker engine (make test); skipped in -short mode")
	}
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		t.Fatal("DOCKER_HOST is not set: start the rig's engine with `make rig-up` and `. .cache/rig/env`, or run `make test` (or go test -short)")
	}
	return host
}
