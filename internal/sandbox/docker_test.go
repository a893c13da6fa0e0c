package sandbox

import (
	"archive/tar"
	"bytes"
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

// TestChrootInUnprivilegedContainer runs the sandbox where GitHub container
// actions and GitLab docker-executor jobs run: a container of the rig's
// Docker engine without --privileged (default capabilities and seccomp
// profile). Namespaces are refused there; auto falls back to chroot.
func TestChrootInUnprivilegedContainer(t *testing.T) {
	testrig.RequireDocker(t)
	bin := t.TempDir()
	for _, p := range []string{"runner", "helper"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, p), "./testdata/"+p)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	var img bytes.Buffer
	tw := tar.NewWriter(&img)
	add := func(h *tar.Header, src string) {
		var data []byte
		if src != "" {
			var err error
			data, err = os.ReadFile(src)
			require.NoError(t, err)
			h.Size = int64(len(data))
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write(data)
		require.NoError(t, err)
	}
	add(&tar.Header{Name: "runner", Mode: 0o755, Typeflag: tar.TypeReg}, filepath.Join(bin, "runner"))
	add(&tar.Header{Name: "outside/", Mode: 0o777, Typeflag: tar.TypeDir}, "")
	add(&tar.Header{Name: "stage/", Mode: 0o755, Typeflag: tar.TypeDir}, "")
	add(&tar.Header{Name: "stage/usr/bin/", Mode: 0o755, Typeflag: tar.TypeDir}, "")
	add(&tar.Header{Name: "stage/usr/bin/helper", Mode: 0o755, Typeflag: tar.TypeReg}, filepath.Join(bin, "helper"))
	add(&tar.Header{Name: "stage/bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, "")
	require.NoError(t, tw.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag := fmt.Sprintf("hoist-test/sandbox:%d", time.Now().UnixNano())
	imp := exec.CommandContext(ctx, "docker", "import", "-", tag)
	imp.Stdin = &img
	out, err := imp.CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })

	run := func(iso string, dockerArgs ...string) string {
		args := append([]string{"run", "--rm", "--network", "none"}, dockerArgs...)
		out, err := exec.CommandContext(ctx, "docker", append(args, tag, "/runner", iso)...).CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	got := run("auto")
	require.Contains(t, got, "isolation=chroot")
	require.Contains(t, got, "root=[bin dev usr]", "the command ran in /stage, chrooted (with the /dev made for it)")
	require.NotContains(t, got, "error:")

	// Neither: a container without CAP_SYS_CHROOT. The error names the
	// missing privilege and the fix.
	got = run("auto", "--cap-drop", "SYS_CHROOT")
	require.Contains(t, got, "error: not permitted here: isolation chroot: chroot was refused")
	require.Contains(t, got, "it needs CAP_SYS_CHROOT")
	require.Contains(t, got, "namespaces were refused too")

	// Namespaces permitted but /proc masked by Docker: a user namespace
	// may not mount a fresh /proc over masked entries, so the sandbox
	// does without one there (the container is the outer boundary).
	got = run("auto", "--security-opt", "seccomp=unconfined", "--cap-add", "SYS_ADMIN")
	require.Contains(t, got, "isolation=namespaces")
	require.Contains(t, got, "pid=1 ", "the command is the first process of its own PID namespace")
	require.NotContains(t, got, "error:")

	// The escape list in both containers: blocked, nothing in /outside
	// (the runner lists it after the RUN).
	for _, opts := range [][]string{nil, {"--security-opt", "seccomp=unconfined", "--cap-add", "SYS_ADMIN"}} {
		got = "\n" + run("auto", append([]string{"-e", "ESCAPE=1"}, opts...)...)
		t.Logf("escape list in a container %v:\n%s", opts, got)
		for _, a := range escapeAttempts {
			require.Contains(t, got, "\n"+a+": blocked", "%s got through in a container %v:\n%s", a, opts, got)
		}
		require.Contains(t, got, "outside: []")
	}

	got = run("namespaces")
	require.Contains(t, got, "error: not permitted here: isolation namespaces")
	require.Contains(t, got, "use isolation chroot")
	if !strings.Contains(got, "isolation=namespaces") {
		t.Fatalf("unexpected output: %s", got)
	}
}
