package buildpush

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestDockerLoadsAndRunsTheTarball checks tar-path with the rig's real
// Docker engine: the image loads and runs (busybox from the host's
// busybox-static package, COPYed into a scratch image).
func TestDockerLoadsAndRunsTheTarball(t *testing.T) {
	testrig.RequireDocker(t)
	bb, err := exec.LookPath("busybox")
	require.NoError(t, err, "busybox-static is part of the rig: test/rig/install.sh")
	data, err := os.ReadFile(bb)
	require.NoError(t, err)
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\nCOPY hello.sh /app/\nWORKDIR /app\nENV GREETING=hello\nUSER 1000:1000\nENTRYPOINT [\"/bin/busybox\", \"sh\"]\nCMD [\"hello.sh\"]\n",
		"hello.sh":   "echo \"$GREETING from $(/bin/busybox pwd) as $(/bin/busybox id -u)\"\n",
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "busybox"), data, 0o644))
	tag := fmt.Sprintf("hoist-test/build-push:%d", time.Now().UnixNano())
	o := Options{Context: dir, Registry: e.client, Tags: []string{tag}, TarPath: filepath.Join(t.TempDir(), "image.tar"), Format: "docker"}
	_, err = Run(context.Background(), o)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "load", "-i", o.TarPath).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", "docker.io/"+tag).Run() })
	out, err = exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", tag).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Equal(t, "hello from /app as 1000", strings.TrimSpace(string(out)))
}
