package buildpush

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// runCases are the suite's RUN tests, run again as uid 65534.
const runCases = "^(TestRun[A-Za-z]*|TestOnbuildTriggersRun|TestScratchDir|TestRootlessWithoutSubordinateIDs|TestRootlessWhereTheKernelForbidsIt)$"

// TestRootless runs the suite's RUN cases as an ordinary user (uid
// 65534): the test binary enters a user namespace as build-push's main
// does (sandbox.Rootless), mapping nobody's subordinate ids from
// /etc/subuid through newuidmap, and every case — USER 0:0, USER app with
// its groups, mounts, both snapshot methods — passes as it does for root.
// Without subordinate ids, a RUN as root still works and USER app fails
// naming the fix; where the kernel forbids user namespaces, a RUN fails
// naming the setting.
func TestRootless(t *testing.T) {
	if os.Getenv("HOIST_TEST_ROOTLESS") != "" {
		t.Skip("already rootless")
	}
	if testing.Short() {
		t.Skip("runs the RUN suite again as uid 65534")
	}
	t.Run("subordinate-ids", func(t *testing.T) {
		// TestRunForeignPlatform builds its arm64 program with go, which
		// uid 65534 cannot run here (no build cache of its own).
		out, err := testrig.AsNobody(t, runCases, "HOIST_TEST_ROOTLESS=subids", "HOIST_TEST_SKIP=^TestRunForeignPlatform$")
		require.NoError(t, err, out)
		requireRan(t, out, "TestRunSemantics", "TestRunMounts", "TestRunChrooted", "TestRunLayerHoldsWhatChanged", "TestRunCacheHitNeverUnpacksTheBase")
		require.Contains(t, out, "--- SKIP: TestRootlessWithoutSubordinateIDs")
	})
	t.Run("own-ids-only", func(t *testing.T) {
		out, err := testrig.AsNobody(t, "^TestRootlessWithoutSubordinateIDs$", "HOIST_TEST_ROOTLESS=single")
		require.NoError(t, err, out)
		requireRan(t, out, "TestRootlessWithoutSubordinateIDs")
	})
	t.Run("forbidden", func(t *testing.T) {
		out, err := testrig.AsNobodyWithoutUserNamespaces(t, "^TestRootlessWhereTheKernelForbidsIt$", "HOIST_TEST_ROOTLESS=forbidden")
		require.NoError(t, err, out)
		requireRan(t, out, "TestRootlessWhereTheKernelForbidsIt")
	})
}

// requireRan checks that each test ran and passed, and none failed.
func requireRan(t *testing.T, out string, tests ...string) {
	t.Helper()
	require.NotRegexp(t, regexp.MustCompile(`--- FAIL`), out)
	for _, name := range tests {
		require.Contains(t, out, "--- PASS: "+name+" ", out)
	}
	require.True(t, strings.HasSuffix(strings.TrimSpace(out), "PASS") || strings.Contains(out, "\nPASS\n"), out)
}

// TestRootlessWithoutSubordinateIDs runs as uid 65534 in a user namespace
// that maps only root (no /etc/subuid range, or no newuidmap): a RUN as
// root works; USER app fails naming the ids and the fix.
func TestRootlessWithoutSubordinateIDs(t *testing.T) {
	if os.Getenv("HOIST_TEST_ROOTLESS") != "single" {
		t.Skip("run by TestRootless as uid 65534 without subordinate ids")
	}
	e := runEnv(t)
	df := "ARG BASE\nFROM ${BASE}\nUSER 0:0\nRUN id > /id.txt\n"
	res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": df}, nil)
	require.NoError(t, err, out)
	id, _ := fileOf(t, pull(t, res.Tags[0]), "id.txt")
	// No supplementary group at all: the namespace denies setgroups
	// (docker run shows groups=0(root)).
	require.Equal(t, "uid=0(root) gid=0(root)\n", id.Content)

	_, _, err = buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nUSER app\nRUN id\n"}, nil)
	require.ErrorContains(t, err, "Dockerfile:4: RUN: uid 1000, gid 1000, gid 50: not among the ids build-push may use")
	require.ErrorContains(t, err, "usermod --add-subuids")
	require.ErrorContains(t, err, "newuidmap")
}

// TestRootlessWhereTheKernelForbidsIt runs as uid 65534 where creating a
// user namespace fails (user.max_user_namespaces is 0): a build without
// RUN works; a RUN fails naming the setting and the fixes.
func TestRootlessWhereTheKernelForbidsIt(t *testing.T) {
	if os.Getenv("HOIST_TEST_ROOTLESS") != "forbidden" {
		t.Skip("run by TestRootless as uid 65534 where user namespaces are forbidden")
	}
	require.NotEqual(t, 0, os.Geteuid(), "no user namespace could be entered")
	e := runEnv(t)
	_, out, err := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY Dockerfile /\n"}, nil)
	require.NoError(t, err, out)
	_, _, err = buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN true\n"}, nil)
	require.ErrorContains(t, err, "Dockerfile:3: RUN: not permitted here: isolation namespaces: build-push is not root, so RUN needs an unprivileged user namespace")
	require.ErrorContains(t, err, "user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)")
	require.ErrorContains(t, err, "or run build-push as root")
}
