package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// escape tries every way out of the sandbox the regression list names and
// prints one line per attempt: "NAME: blocked (why)" or "NAME: ESCAPED
// (what)". hostDir is a directory of the host the stage does not have: a
// way out writes a marker file there. pids are host processes (build-push,
// a decoy holding a credential) to read and trace.
func escape(hostDir string, pids []string) {
	runtime.LockOSThread() // ptrace attaches a thread
	report := func(name string, escaped bool, detail any) {
		verdict := "blocked"
		if escaped {
			verdict = "ESCAPED"
		}
		fmt.Printf("%s: %s (%v)\n", name, verdict, detail)
	}
	// Joined as strings: filepath.Join would clean "/.." away.
	marker := func(dir, name string) error {
		return os.WriteFile(dir+"/"+name, []byte("out\n"), 0o644)
	}

	// Through /proc: pid 1's root, our own root's parent.
	err := marker("/proc/1/root"+hostDir, "proc1-root")
	report("proc1-root", err == nil, err)
	err = marker("/proc/self/root/.."+hostDir, "proc-self-root")
	report("proc-self-root", err == nil, err)

	// Credentials in any process's environment or command line.
	needle := []byte("CANARY" + "-7c2d")
	entries, err := os.ReadDir("/proc")
	seen, found := 0, ""
	for _, e := range entries {
		if _, perr := strconv.Atoi(e.Name()); perr != nil {
			continue
		}
		for _, f := range []string{"environ", "cmdline"} {
			data, rerr := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if rerr != nil {
				continue
			}
			seen++
			if bytes.Contains(data, needle) {
				found += fmt.Sprintf(" pid %s %s", e.Name(), f)
			}
		}
	}
	for _, pid := range pids {
		for _, f := range []string{"environ", "cmdline"} {
			data, rerr := os.ReadFile(filepath.Join("/proc", pid, f))
			if rerr == nil && bytes.Contains(data, needle) {
				found += fmt.Sprintf(" host pid %s %s", pid, f)
			}
		}
	}
	if found != "" {
		report("environ-cmdline", true, "a credential in"+found)
	} else {
		report("environ-cmdline", false, fmt.Sprintf("%d files readable, none holds a credential; /proc: %v", seen, err))
	}

	// mount
	_ = os.Mkdir("/escape-mnt", 0o755)
	err = unix.Mount("tmpfs", "/escape-mnt", "tmpfs", 0, "")
	if err == nil {
		_ = unix.Unmount("/escape-mnt", 0)
	}
	report("mount", err == nil, err)
	_ = os.Remove("/escape-mnt")

	// A block device node (loop0): raw access to a host disk.
	err = unix.Mknod("/escape-blk", unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0)))
	if err == nil {
		_ = os.Remove("/escape-blk")
	}
	report("mknod-block", err == nil, err)

	// Writing kernel settings: opened for writing only, nothing written.
	openW := func(paths ...string) (string, error) {
		var last error
		for _, p := range paths {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				f.Close()
				return p, nil
			}
			last = err
			if !errors.Is(err, os.ErrNotExist) {
				return p, err
			}
		}
		return "", last
	}
	p, err := openW("/proc/sys/vm/drop_caches", "/proc/sysrq-trigger")
	report("proc-sys-write", err == nil, fmt.Sprint(p, " ", err))
	p, err = openW("/sys/kernel/mm/transparent_hugepage/enabled", "/sys/power/state", "/sys/kernel/profiling", "/sys/class/net/lo/mtu")
	report("sys-write", err == nil, fmt.Sprint(p, " ", err))

	// Loading a module: our own executable is none, so a loader that
	// is reached says ENOEXEC; a blocked one EPERM.
	self, err := exec.LookPath(os.Args[0])
	if err == nil {
		var f *os.File
		if f, err = os.Open(self); err == nil {
			err = unix.FinitModule(int(f.Fd()), "", 0)
			f.Close()
		}
	}
	report("module", !errors.Is(err, unix.EPERM), err)

	// ptrace of the parent, and of the host processes named.
	targets := append([]string{strconv.Itoa(os.Getppid())}, pids...)
	var attached []string
	var last error
	for _, pid := range targets {
		n, _ := strconv.Atoi(pid)
		if n <= 0 {
			last = fmt.Errorf("pid %d: no such process here", n)
			continue
		}
		if err := unix.PtraceAttach(n); err != nil {
			last = fmt.Errorf("pid %d: %w", n, err)
			continue
		}
		attached = append(attached, pid)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(n, &ws, unix.WALL, nil)
		_ = unix.PtraceDetach(n)
	}
	report("ptrace-parent", len(attached) > 0, fmt.Sprint("attached ", attached, " ", last))

	// A new user namespace (root of it could mount, and so on).
	c := exec.Command(self, "info")
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	err = c.Run()
	report("unshare-userns", err == nil, err)

	// Signals to the parent (not an escape under namespaces, where the
	// parent is out of sight; the same uid's processes can be signalled
	// under chroot).
	err = unix.Kill(os.Getppid(), 0)
	if os.Getppid() == 0 {
		err = errors.New("no parent in sight")
	}
	fmt.Printf("signal-parent: %v\n", map[bool]string{true: "reachable", false: fmt.Sprint("unreachable (", err, ")")}[err == nil])

	// Last, as it changes our root when it works: the classic chroot
	// escape.
	err = func() error {
		if err := os.MkdirAll("/escape-x", 0o755); err != nil {
			return err
		}
		if err := unix.Chroot("/escape-x"); err != nil {
			return err
		}
		for range 64 {
			_ = unix.Chdir("..")
		}
		if err := unix.Chroot("."); err != nil {
			return err
		}
		return marker(hostDir, "chroot-escape")
	}()
	report("chroot-escape", err == nil, err)
}
