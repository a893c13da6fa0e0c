package sandbox

import (
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
	"golang.org/x/sys/unix"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// newRoot makes a merged-/usr root holding a static helper binary.
func newRoot(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a helper and runs it chrooted; skipped with -short")
	}
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "work"), 0o755))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	dst := filepath.Join(root, "usr/bin/helper")
	if prebuilt := os.Getenv("HOIST_TEST_HELPER"); prebuilt != "" {
		// Running as uid 65534 (no Go build cache): the parent built it.
		data, err := os.ReadFile(prebuilt)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, data, 0o755))
		return root
	}
	buildHelper(t, dst)
	return root
}

// buildHelper builds testdata/helper, statically, at dst.
func buildHelper(t *testing.T, dst string) {
	t.Helper()
	build := exec.Command("go", "build", "-o", dst, "./testdata/helper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
}

// runOut runs c with the test binary as its init (TestMain calls Init).
func runOut(t *testing.T, c Command, iso Isolation) (string, Isolation, error) {
	t.Helper()
	if c.Init == "" {
		self, err := os.Executable()
		require.NoError(t, err)
		c.Init = self
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	used, err := Run(context.Background(), c, iso)
	return out.String(), used, err
}

func TestIsolations(t *testing.T) {
	root := newRoot(t)
	for _, iso := range []Isolation{Chroot, Namespaces, Auto} {
		t.Run(string(iso), func(t *testing.T) {
			out, used, err := runOut(t, Command{Root: root, Args: []string{"helper", "info"}, Env: []string{"PATH=/bin", "GREETING=hi"}, Dir: "/work"}, iso)
			require.NoError(t, err, out)
			require.Contains(t, out, "uid=0 gid=0")
			require.Contains(t, out, "cwd=/work")
			if iso == Chroot {
				require.Contains(t, out, "root=[bin dev usr work]", "the command sees the stage's root (and the /dev made for it), not the host's")
			} else {
				require.Contains(t, out, "root=[bin dev proc sys usr work]", "the command sees the stage's root (and its mount points), not the host's")
			}
			require.Contains(t, out, "env=hi")
			switch iso {
			case Namespaces:
				require.Contains(t, out, "pid=1 ", "first process of a new PID namespace")
			case Chroot:
				require.NotContains(t, out, "pid=1 ")
			case Auto:
				require.Equal(t, Namespaces, used, "root on this host may create namespaces")
			}
		})
	}
}

func TestWritesStayInRoot(t *testing.T) {
	root := newRoot(t)
	name := "hoist-sandbox-test-" + filepath.Base(root)
	out, _, err := runOut(t, Command{Root: root, Args: []string{"/usr/bin/helper", "write", "/" + name, "data"}}, Auto)
	require.NoError(t, err, out)
	require.FileExists(t, filepath.Join(root, name))
	require.NoFileExists(t, "/"+name)
}

func TestUser(t *testing.T) {
	root := newRoot(t)
	for _, iso := range []Isolation{Chroot, Namespaces} {
		out, _, err := runOut(t, Command{Root: root, Args: []string{"helper", "info"}, UID: 1000, GID: 1001, Groups: []uint32{10, 20}}, iso)
		require.NoError(t, err, out)
		require.Contains(t, out, "uid=1000 gid=1001 groups=[10 20]")
	}
}

func TestExitError(t *testing.T) {
	root := newRoot(t)
	_, _, err := runOut(t, Command{Root: root, Args: []string{"helper", "fail", "3"}, TailLines: 5}, Auto)
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 3, ee.Code)
	require.Equal(t, "line 26\nline 27\nline 28\nline 29\nboom", ee.Tail)
	require.ErrorContains(t, err, "helper fail 3: exit code 3; last output:\nline 26")
}

func TestNotFound(t *testing.T) {
	root := newRoot(t)
	_, _, err := runOut(t, Command{Root: root, Args: []string{"bash", "-c", "true"}, Env: []string{"PATH=/usr/bin:/bin"}}, Auto)
	require.ErrorContains(t, err, "bash: not found in the stage's PATH (/usr/bin:/bin)")
}

func TestCancel(t *testing.T) {
	root := newRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	self, err := os.Executable()
	require.NoError(t, err)
	_, err = Run(ctx, Command{Root: root, Args: []string{"helper", "sleep"}, Init: self}, Auto)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second)
}

func TestNetworkNone(t *testing.T) {
	root := newRoot(t)
	out, _, err := runOut(t, Command{Root: root, Args: []string{"helper", "net"}, Network: NetworkNone}, Namespaces)
	require.NoError(t, err, out)
	require.Equal(t, "lo", strings.TrimSpace(out), "only loopback in a new network namespace")

	_, _, err = runOut(t, Command{Root: root, Args: []string{"helper", "net"}, Network: NetworkNone}, Chroot)
	require.ErrorIs(t, err, ErrNotPermitted)
	require.ErrorContains(t, err, "network none needs a network namespace")
}

func TestClassify(t *testing.T) {
	err := classify(Namespaces, &os.SyscallError{Syscall: "clone", Err: unix.EPERM})
	require.ErrorIs(t, err, ErrNotPermitted)
	require.ErrorContains(t, err, "seccomp=unconfined")
	require.ErrorContains(t, err, "isolation chroot")
	err = classify(Chroot, &os.SyscallError{Syscall: "chroot", Err: unix.EPERM})
	require.ErrorIs(t, err, ErrNotPermitted)
	require.ErrorContains(t, err, "CAP_SYS_CHROOT")
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Isolation{"": Auto, "auto": Auto, "Namespaces": Namespaces, " chroot ": Chroot} {
		got, err := ParseIsolation(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseIsolation("rootless")
	require.ErrorContains(t, err, `isolation "rootless": use auto, namespaces or chroot`)
	n, err := ParseNetwork("none")
	require.NoError(t, err)
	require.Equal(t, NetworkNone, n)
	_, err = ParseNetwork("host")
	require.ErrorContains(t, err, `network "host": use default or none`)
}

func TestMain(m *testing.M) {
	testrig.NobodyStep()
	if handled, err := Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(initFailed)
	}
	// Run as uid 65534 by testrig.AsNobody: into a user namespace, as
	// build-push does.
	if mode := os.Getenv("HOIST_TEST_ROOTLESS"); mode != "" || Reexecuted() {
		if code, done := Rootless(RootlessOptions{NoSubordinateIDs: os.Getenv("HOIST_TEST_ROOTLESS") == "single"}); done {
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

// TestNamespacesMounts: with the init step, a command sees a fresh /proc
// (its own PID namespace), /dev/null, a read-only /sys and the host's
// resolv.conf; the mount points it needed are gone afterwards.
func TestNamespacesMounts(t *testing.T) {
	root := newRoot(t)
	require.NoError(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
	self, err := os.Executable()
	require.NoError(t, err)
	for _, network := range []Network{NetworkDefault, NetworkNone} {
		out, used, err := runOut(t, Command{Root: root, Args: []string{"helper", "mounts"}, Init: self, Network: network, UID: 1000, GID: 1000}, Auto)
		require.NoError(t, err, out)
		require.Equal(t, Namespaces, used)
		require.Contains(t, out, `proc="1" <nil>`)
		require.Contains(t, out, "devnull=<nil>")
		require.Contains(t, out, "sys-readonly=true <nil>")
		if resolv, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			require.Contains(t, out, fmt.Sprintf("resolv=%d <nil>", len(resolv)))
		}
	}
	for _, p := range []string{"proc", "dev", "sys", "etc/resolv.conf", "etc/hosts"} {
		require.NoFileExists(t, filepath.Join(root, p), "mount points made for the command are removed")
		require.NoDirExists(t, filepath.Join(root, p))
	}
}

// TestChrootDevices: chrooted, a command still has /dev/null and
// friends (made with mknod, removed after it; the root's times are put
// back), but no /proc.
func TestChrootDevices(t *testing.T) {
	root := newRoot(t)
	var before unix.Stat_t
	require.NoError(t, unix.Lstat(root, &before))
	out, _, err := runOut(t, Command{Root: root, Args: []string{"helper", "mounts"}, UID: 1000, GID: 1000}, Chroot)
	require.NoError(t, err, out)
	require.Contains(t, out, "devnull=<nil>")
	require.Contains(t, out, "proc=")
	require.NotContains(t, out, `proc="1"`)
	require.NoDirExists(t, filepath.Join(root, "dev"), "the /dev made for the command is removed")
	var after unix.Stat_t
	require.NoError(t, unix.Lstat(root, &after))
	require.Equal(t, before.Mtim, after.Mtim, "the root's modification time is as it was")

	// A stage with its own /dev keeps it; only the missing nodes come and go.
	require.NoError(t, os.Mkdir(filepath.Join(root, "dev"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "dev", "keep"), nil, 0o644))
	out, _, err = runOut(t, Command{Root: root, Args: []string{"helper", "mounts"}}, Chroot)
	require.NoError(t, err, out)
	entries, err := os.ReadDir(filepath.Join(root, "dev"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "keep", entries[0].Name())
}

func TestInitRefusesSymlinkedMountPoint(t *testing.T) {
	root := newRoot(t)
	require.NoError(t, os.Symlink("/", filepath.Join(root, "proc")))
	self, err := os.Executable()
	require.NoError(t, err)
	_, _, err = runOut(t, Command{Root: root, Args: []string{"helper", "info"}, Init: self}, Namespaces)
	require.ErrorContains(t, err, "the stage's /proc is or goes through a symlink")
}

// TestPipes: a command runs a file from /dev/pipes (a RUN's heredoc script,
// as BuildKit mounts it) under both isolations; under chroot the files are
// made in the root's /dev and removed after, the directory's times put back.
func TestPipes(t *testing.T) {
	root := newRoot(t)
	helper, err := os.ReadFile(filepath.Join(root, "usr/bin/helper"))
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(root, "dev"), 0o755))
	var before unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(root, "dev"), &before))
	for _, iso := range []Isolation{Chroot, Namespaces} {
		t.Run(string(iso), func(t *testing.T) {
			out, _, err := runOut(t, Command{Root: root, Args: []string{PipesDir + "/script", "info"}, Dir: "/work",
				Pipes: map[string][]byte{"script": helper}, UID: 1000, GID: 1000}, iso)
			require.NoError(t, err, out)
			require.Contains(t, out, "uid=1000", "the script runs as the command's user")
			entries, err := os.ReadDir(filepath.Join(root, "dev"))
			require.NoError(t, err)
			require.Empty(t, entries, "nothing of the pipes stays in the root")
			var after unix.Stat_t
			require.NoError(t, unix.Lstat(filepath.Join(root, "dev"), &after))
			require.Equal(t, before.Mtim, after.Mtim, "/dev's modification time is as it was")
		})
	}
}
