package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeps keeps the storage SDKs out of build-push: remote contexts are
// read with thin clients over the credential code the binary already links
// (internal/buildcontext). The S3 client alone adds about 1 MB, go-git's
// clone (which links every transport it registers) about 1.1 MB.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		for _, banned := range []string{
			"github.com/aws/aws-sdk-go-v2/service/s3",
			"github.com/aws/aws-sdk-go-v2/feature/s3",
			"github.com/Azure/azure-sdk-for-go/sdk",
			"cloud.google.com/go/storage",
			"google.golang.org/grpc",
		} {
			require.False(t, strings.HasPrefix(dep, banned), "actions/build-push depends on %s: read remote contexts with internal/buildcontext's clients", dep)
		}
	}
	out, err = exec.Command("go", "list", "-deps", "../../internal/buildcontext").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/go-git/go-git/v5/plumbing/transport/client",
			"github.com/go-git/go-git/v5/plumbing/transport/ssh",
		} {
			require.NotEqual(t, banned, dep, "internal/buildcontext depends on %s, which links every git transport, SSH included", dep)
		}
	}
}
