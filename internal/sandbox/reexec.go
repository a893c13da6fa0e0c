package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// concealedFD names the file descriptor that holds a re-executed
// process's real arguments and environment.
const concealedFD = "_HOIST_CONCEALED_FD"

// usernsStage tells a process started by Rootless where it is: "wait"
// (its maps are being written), "ready" (re-executed as root of the
// namespace).
const usernsStage = "_HOIST_USERNS"

// concealed is what a re-executed process gets back.
type concealed struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

// runtimeEnv are variables the Go runtime reads before main: they stay in
// the environment of a re-executed process.
var runtimeEnv = []string{"GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GOTRACEBACK"}

// Conceal keeps the process's credentials out of everyone's sight: it
// re-executes the running binary in place (same pid) with its arguments
// and environment moved out of /proc/<pid>/cmdline and /proc/<pid>/environ
// — where a process that can see this one could read INPUT_PASSWORD,
// GITHUB_TOKEN, a --password flag or the variables secrets are read from —
// into a sealed memory file it reads back at once (os.Args and os.Getenv
// work as before). Call it first in main, after Init; it returns when the
// process runs concealed (or when it cannot re-execute: the error says
// why, and the process goes on as it is).
func Conceal() error {
	if restored, err := restoreConcealed(); restored || err != nil {
		return err
	}
	return reexecConcealed(nil)
}

// Reexecuted tells whether this process was re-executed by Conceal or
// Rootless and has not read its arguments back yet (a test binary's
// TestMain hands such a process to the program's main).
func Reexecuted() bool {
	_, ok := os.LookupEnv(concealedFD)
	return ok
}

// reexecConcealed replaces the process by the running binary with the
// arguments and environment (and extra variables) in a memory file.
func reexecConcealed(extra []string) error {
	f, err := concealedFile(extra)
	if err != nil {
		return fmt.Errorf("moving the environment out of /proc/self/environ: %w", err)
	}
	env := append(keptEnv(), fmt.Sprintf("%s=%d", concealedFD, f.Fd()))
	err = syscall.Exec("/proc/self/exe", []string{os.Args[0]}, env)
	f.Close()
	return fmt.Errorf("re-executing %s to move its environment out of /proc/self/environ: %w", os.Args[0], err)
}

// concealedFile is a sealed memory file holding os.Args[1:] and the
// environment (with extra), open without close-on-exec.
func concealedFile(extra []string) (*os.File, error) {
	data, err := json.Marshal(concealed{Args: os.Args[1:], Env: append(os.Environ(), extra...)})
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("hoist-environment", unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "hoist-environment")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func keptEnv() []string {
	var env []string
	for _, k := range runtimeEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// restoreConcealed reads back what reexecConcealed moved away, once.
func restoreConcealed() (bool, error) {
	v, ok := os.LookupEnv(concealedFD)
	if !ok {
		return false, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return true, fmt.Errorf("%s=%q: not a file descriptor", concealedFD, v)
	}
	f := os.NewFile(uintptr(fd), "hoist-environment")
	var c concealed
	err = json.NewDecoder(f).Decode(&c)
	f.Close()
	if err != nil {
		return true, fmt.Errorf("reading the concealed environment back: %w", err)
	}
	os.Clearenv()
	for _, kv := range c.Env {
		if k, val, ok := strings.Cut(kv, "="); ok && k != "" {
			_ = os.Setenv(k, val)
		}
	}
	os.Args = append([]string{os.Args[0]}, c.Args...)
	return true, nil
}

// RootlessOptions tune Rootless.
type RootlessOptions struct {
	// NoSubordinateIDs maps only the user's own ids (as without
	// /etc/subuid or newuidmap).
	NoSubordinateIDs bool
}

// Rootless runs the rest of the program as root of a user namespace (and
// in a mount namespace of its own) when it is not root: then RUN works
// as it does for root, with the stage's owners kept (the namespace maps
// root to the user, and the user's subordinate ids from /etc/subuid and
// /etc/subgid to 1… through newuidmap and newgidmap where they allow it;
// else the user's ids alone). The calling process waits for that child
// and returns its exit code with done true: main exits with it. Where the
// kernel forbids unprivileged user namespaces it returns done false and
// the program goes on as it is (a RUN then fails naming the kernel
// setting). Root returns at once. Credentials are handed over as Conceal
// does, never in the child's environment.
func Rootless(o RootlessOptions) (code int, done bool) {
	if _, err := restoreConcealed(); err != nil {
		fmt.Fprintln(os.Stderr, "rootless:", err)
		return 1, true
	}
	switch stage := os.Getenv(usernsStage); {
	case strings.HasPrefix(stage, "wait:"):
		return rootlessWait(stage)
	case stage == "ready":
		os.Unsetenv(usernsStage)
		// Mounts made from here on (overlay snapshots, cache mounts)
		// stay in this namespace.
		_ = unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, "")
		return 0, false
	}
	if os.Geteuid() == 0 {
		return 0, false
	}
	return rootlessParent(o)
}

// rootlessParent starts the program again in a new user and mount
// namespace, maps its ids, and waits for it.
func rootlessParent(o RootlessOptions) (int, bool) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, false
	}
	defer syncR.Close()
	payload, err := concealedFile([]string{usernsStage + "=wait:4"})
	if err != nil {
		syncW.Close()
		return 0, false
	}
	defer payload.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{os.Args[0]}
	cmd.Env = append(keptEnv(), concealedFD+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{payload, syncR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		syncW.Close()
		return 0, false // forbidden here: go on unprivileged
	}
	if err := writeMaps(cmd.Process.Pid, o); err != nil {
		syncW.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		fmt.Fprintln(os.Stderr, "rootless: mapping ids:", err)
		return 0, false
	}
	_, _ = syncW.Write([]byte("ok"))
	syncW.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	close(sigs)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ee.ExitCode(), true
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rootless:", err)
		return 1, true
	}
	return 0, true
}

// rootlessWait is the child before its maps exist: without capabilities
// (it was executed as an unmapped user). Once mapped it executes itself
// again, as root of the namespace.
func rootlessWait(stage string) (int, bool) {
	fd, err := strconv.Atoi(strings.TrimPrefix(stage, "wait:"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rootless:", err)
		return 1, true
	}
	f := os.NewFile(uintptr(fd), "sync")
	buf := make([]byte, 2)
	_, err = io.ReadFull(f, buf)
	f.Close()
	if err != nil || string(buf) != "ok" {
		return 1, true // the parent gave up and goes on itself
	}
	if err := reexecConcealed([]string{usernsStage + "=ready"}); err != nil {
		fmt.Fprintln(os.Stderr, "rootless:", err)
	}
	return 1, true
}

// writeMaps maps root to the caller's ids, and 1… to its subordinate ids
// when /etc/subuid and /etc/subgid give it some and newuidmap and
// newgidmap are installed; else only the caller's ids (setgroups denied).
func writeMaps(pid int, o RootlessOptions) error {
	uid, gid := os.Geteuid(), os.Getegid()
	if !o.NoSubordinateIDs {
		name := strconv.Itoa(uid)
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		subU := subordinateIDs("/etc/subuid", name, uid)
		subG := subordinateIDs("/etc/subgid", name, uid)
		newuid, err1 := exec.LookPath("newuidmap")
		newgid, err2 := exec.LookPath("newgidmap")
		if len(subU) > 0 && len(subG) > 0 && err1 == nil && err2 == nil {
			if err := runIDMap(newuid, pid, uid, subU); err == nil {
				if err := runIDMap(newgid, pid, gid, subG); err == nil {
					return nil
				}
				// uid_map is written: gid_map alone, with setgroups denied.
				return writeOwnMap(pid, "", gid)
			}
		}
	}
	return writeOwnMap(pid, strconv.Itoa(uid), gid)
}

// writeOwnMap maps root to the caller's own ids, which an unprivileged
// process may do after denying setgroups. An empty uid leaves uid_map.
func writeOwnMap(pid int, uid string, gid int) error {
	proc := fmt.Sprintf("/proc/%d/", pid)
	if uid != "" {
		if err := os.WriteFile(proc+"uid_map", []byte("0 "+uid+" 1\n"), 0); err != nil {
			return err
		}
	}
	if err := os.WriteFile(proc+"setgroups", []byte("deny"), 0); err != nil {
		return err
	}
	return os.WriteFile(proc+"gid_map", []byte(fmt.Sprintf("0 %d 1\n", gid)), 0)
}

// runIDMap runs newuidmap or newgidmap: root is the caller's id, 1… its
// subordinate ranges in order.
func runIDMap(tool string, pid, own int, ranges [][2]int) error {
	args := []string{strconv.Itoa(pid), "0", strconv.Itoa(own), "1"}
	next := 1
	for _, r := range ranges {
		args = append(args, strconv.Itoa(next), strconv.Itoa(r[0]), strconv.Itoa(r[1]))
		next += r[1]
	}
	cmd := exec.Command(tool, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// subordinateIDs are the ranges (start, count) /etc/subuid or /etc/subgid
// gives a user, by name or by id.
func subordinateIDs(file, name string, id int) [][2]int {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out [][2]int
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(id)) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, [2]int{start, count})
		}
	}
	return out
}
