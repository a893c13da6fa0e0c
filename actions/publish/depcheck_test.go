package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeps keeps the heavy libraries where they belong (after
// go-containerregistry's cmd/crane/depcheck_test.go): the Helm engine and
// the Kubernetes client only in publish-helm; kustomize, the Azure and S3
// SDKs only in publish and publish-helm's own needs; none of them in the
// other tools.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	publishOnly := []string{"sigs.k8s.io/kustomize/", "github.com/Azure/azure-sdk-for-go/sdk/", "github.com/aws/aws-sdk-go-v2/service/s3", "helm.sh/helm/"}
	helmOnly := []string{"helm.sh/helm/v4/pkg/action", "helm.sh/helm/v4/pkg/engine", "k8s.io/client-go", "k8s.io/api/"}
	banned := map[string][]string{
		".":             helmOnly,
		"../build-push": append(publishOnly, helmOnly...),
		"../retag":      append(publishOnly, helmOnly...),
		"../bump":       append(publishOnly, helmOnly...),
		"../gate":       append(publishOnly, helmOnly...),
	}
	for pkg, bans := range banned {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bans {
				require.False(t, strings.HasPrefix(dep, b), "%s depends on %s; keep %s out of it", pkg, dep, b)
			}
		}
	}
}
