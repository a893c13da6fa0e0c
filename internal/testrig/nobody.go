package testrig

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// NobodyUID is the user rootless tests run as.
const NobodyUID = 65534

// forbidStep marks the intermediate process of AsNobodyWithoutUserNamespaces.
const forbidStep = "HOIST_TEST_FORBID_USERNS"

// AsNobody runs this test binary's tests matching pattern as uid and gid
// 65534 (the rootless situation: build-push started by an ordinary
// user), with env added, and returns what it printed. The binary is
// copied where that user can execute it; TMPDIR and HOME are directories
// of its own; an env entry HOIST_TEST_SKIP=PATTERN becomes -test.skip.
// The package's TestMain calls NobodyStep first, then hands
// the process to sandbox.Rootless when HOIST_TEST_ROOTLESS is set. Needs
// root.
func AsNobody(t *testing.T, pattern string, env ...string) (string, error) {
	t.Helper()
	return asNobody(t, pattern, false, env)
}

// AsNobodyWithoutUserNamespaces is AsNobody where the kernel refuses to
// create user namespaces: the tests run inside a user namespace whose
// user.max_user_namespaces is 0 (a per-namespace limit: the host's is
// untouched).
func AsNobodyWithoutUserNamespaces(t *testing.T, pattern string, env ...string) (string, error) {
	t.Helper()
	return asNobody(t, pattern, true, env)
}

func asNobody(t *testing.T, pattern string, forbid bool, env []string) (string, error) {
	t.Helper()
	cmd := NobodyCommand(t, "-test.run", pattern, "-test.count=1", "-test.v")
	for _, kv := range env {
		if skip, ok := strings.CutPrefix(kv, "HOIST_TEST_SKIP="); ok {
			cmd.Args = append(cmd.Args, "-test.skip", skip)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if forbid {
		// Root of a new user namespace mapping the first 65536 ids onto
		// themselves; NobodyStep sets its limit and becomes nobody.
		cmd.Env = append(cmd.Env, forbidStep+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:                 unix.CLONE_NEWUSER,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
			GidMappingsEnableSetgroups: true,
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// NobodyCommand is this test binary, copied where uid 65534 can execute
// it, to be started as that user with args: HOME and TMPDIR are
// directories of its own, PATH the usual one (and DOCKER_HOST is passed
// on). The caller adds to Env. Needs root.
func NobodyCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("running as uid 65534 needs root (the rig runs the suite as root)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := SharedDir(t)
	bin := filepath.Join(dir, filepath.Base(self))
	if err := copyExecutable(self, bin); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, NobodyUID, NobodyUID); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "TMPDIR=" + tmp}
	if v := os.Getenv("DOCKER_HOST"); v != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: NobodyUID, Gid: NobodyUID, Groups: []uint32{}}}
	if wd, err := os.Getwd(); err == nil {
		cmd.Dir = wd
	}
	return cmd
}

// SharedDir is a temporary directory anyone may read (t.TempDir's parent
// is private to root), removed after the test.
func SharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hoist-shared-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// NobodyStep is the first call of a TestMain that AsNobody may run: in
// the intermediate process of AsNobodyWithoutUserNamespaces it sets the
// namespace's user.max_user_namespaces to 0 and executes the binary again
// as uid 65534.
func NobodyStep() {
	if os.Getenv(forbidStep) == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "testrig: forbidding user namespaces:", err)
		os.Exit(3)
	}
	if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0); err != nil {
		fail(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, forbidStep+"=") {
			env = append(env, kv)
		}
	}
	if err := syscall.Setgroups(nil); err != nil {
		fail(err)
	}
	if err := syscall.Setgid(NobodyUID); err != nil {
		fail(err)
	}
	if err := syscall.Setuid(NobodyUID); err != nil {
		fail(err)
	}
	fail(syscall.Exec("/proc/self/exe", os.Args, env))
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
