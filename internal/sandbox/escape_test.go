package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// escapeAttempts is the regression list: testdata/helper's escape tries
// each and prints "NAME: blocked (…)" or "NAME: ESCAPED (…)".
var escapeAttempts = []string{
	"chroot-escape", "proc1-root", "proc-self-root", "environ-cmdline", "mount",
	"mknod-block", "proc-sys-write", "sys-write", "module", "ptrace-parent", "unshare-userns",
}

// requireBlocked checks the helper's report: every attempt ran and was
// blocked, and nothing reached hostDir.
func requireBlocked(t *testing.T, out, hostDir string) {
	t.Helper()
	for _, a := range escapeAttempts {
		require.Contains(t, out, "\n"+a+": blocked", "%s got through:\n%s", a, out)
	}
	require.NotContains(t, out, "ESCAPED")
	entries, err := os.ReadDir(hostDir)
	require.NoError(t, err)
	require.Empty(t, entries, "a RUN wrote on the host")
}

// startDecoy starts a host process with a credential in its environment
// and command line, as build-push's own would have without Conceal.
func startDecoy(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 300", "CANARY-7c2d-decoy-cmdline")
	cmd.Env = []string{"INPUT_PASSWORD=CANARY-7c2d-decoy-environ"}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// hostMarkerDir is a directory of the host that no stage has, writable
// by anyone: a way out of the sandbox leaves a file there.
func hostMarkerDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o777))
	return dir
}

// TestEscapes runs the escape list as root in the stage, under each
// isolation: all of it is blocked, and no host marker is written.
// (TestEscapesRootless runs it again as uid 65534.)
func TestEscapes(t *testing.T) {
	root := newRoot(t)
	decoy := startDecoy(t)
	for _, iso := range []Isolation{Namespaces, Chroot} {
		t.Run(string(iso), func(t *testing.T) {
			hostDir := hostMarkerDir(t)
			out, used, err := runOut(t, Command{Root: root, Env: []string{"PATH=/bin"},
				Args: []string{"helper", "escape", hostDir, strconv.Itoa(os.Getpid()), strconv.Itoa(decoy)}}, iso)
			require.NoError(t, err, out)
			require.Equal(t, iso, used)
			t.Logf("isolation %s, uid %d:\n%s", iso, os.Getuid(), out)
			requireBlocked(t, "\n"+out, hostDir)
			if iso == Namespaces {
				require.Contains(t, out, "signal-parent: unreachable", "the parent is out of the PID namespace")
			}
		})
	}
}

// TestEscapesRootless: the same list as uid 65534, where the sandbox
// lives in the user namespace Rootless made (and the users, groups and
// network tests there too).
func TestEscapesRootless(t *testing.T) {
	if os.Getenv("HOIST_TEST_ROOTLESS") != "" {
		t.Skip("already rootless")
	}
	helper := sharedHelper(t)
	out, err := testrig.AsNobody(t, "^(TestEscapes|TestIsolations|TestUser|TestNetworkNone)$", "HOIST_TEST_ROOTLESS=subids", "HOIST_TEST_HELPER="+helper)
	require.NoError(t, err, out)
	require.NotContains(t, out, "--- FAIL")
	require.Contains(t, out, "--- PASS: TestUser")
	require.Contains(t, out, "--- PASS: TestIsolations")
	require.Contains(t, out, "--- PASS: TestNetworkNone")
	require.Contains(t, out, "--- PASS: TestEscapes/namespaces")
	require.Contains(t, out, "--- PASS: TestEscapes/chroot")
	require.Contains(t, out, "uid 0:", "the tests ran as root of the user namespace")
	t.Log(lastLines(out, 80))
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sharedHelper builds the helper where uid 65534 can read it.
func sharedHelper(t *testing.T) string {
	t.Helper()
	helper := filepath.Join(testrig.SharedDir(t), "helper")
	buildHelper(t, helper)
	return helper
}
