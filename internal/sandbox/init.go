package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// initArg is argv[1] of the re-executed binary acting as the sandbox's
// init: it runs inside the new namespaces, mounts what the command needs,
// chroots and executes the command.
const initArg = "__hoist-sandbox-init"

// initSpec is what the init step needs, passed on a pipe (file
// descriptor 3) as JSON.
type initSpec struct {
	Root   string   `json:"root"`
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Dir    string   `json:"dir"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
	NewNet bool     `json:"newNet"`
	// Pipes are Command.Pipes, written in a tmpfs at /dev/pipes.
	Pipes map[string][]byte `json:"pipes,omitempty"`
	// Mode is Namespaces (mount the command's view, pivot_root into the
	// root) or Chroot (chroot only: no mount namespace).
	Mode Isolation `json:"mode"`
	// Caps is the bounding set the command runs with.
	Caps []string `json:"caps"`
}

// Init runs the sandbox's init step when the process was started as one
// (the binary named in Command.Init): it returns only on failure, with
// handled true. A main calls it first:
//
//	if handled, err := sandbox.Init(); handled { fmt.Fprintln(os.Stderr, err); os.Exit(125) }
//
// The step, on one locked thread: the mounts and pivot_root (namespaces)
// or chroot; the working directory; the capability bounding set; groups,
// gid and uid; no_new_privs; the seccomp filter; then execve.
func Init() (handled bool, err error) {
	if len(os.Args) < 2 || os.Args[1] != initArg {
		return false, nil
	}
	// Capabilities, no_new_privs and seccomp belong to a thread: the one
	// that executes the command.
	runtime.LockOSThread()
	f := os.NewFile(3, "spec")
	var s initSpec
	err = json.NewDecoder(f).Decode(&s)
	f.Close()
	if err != nil {
		return true, fmt.Errorf("sandbox init: reading the spec: %w", err)
	}
	// run ends in exec: it returns only on failure.
	return true, fmt.Errorf("sandbox init: %w", s.run())
}

func (s *initSpec) run() error {
	keep, err := capabilitySet(s.Caps)
	if err != nil {
		return err
	}
	filter, err := seccompFilter(s.Caps)
	if err != nil {
		return err
	}
	switch s.Mode {
	case Namespaces:
		if err := s.mounts(); err != nil {
			return err
		}
		if err := pivotRoot(s.Root); err != nil {
			return fmt.Errorf("entering the root with pivot_root: %w", err)
		}
		if err := maskPaths(); err != nil {
			return err
		}
	case Chroot:
		if err := unix.Chroot(s.Root); err != nil {
			return fmt.Errorf("chroot %s: %w", s.Root, err)
		}
	default:
		return fmt.Errorf("isolation %q", s.Mode)
	}
	if err := unix.Chdir(s.Dir); err != nil {
		return fmt.Errorf("working directory %s: %w", s.Dir, err)
	}
	if err := boundCapabilities(keep); err != nil {
		return err
	}
	// On this thread only (it executes the command; the others end with
	// the exec): syscall.Setuid and friends would stop every thread.
	groups := make([]uint32, len(s.Groups))
	copy(groups, s.Groups)
	var gp unsafe.Pointer
	if len(groups) > 0 {
		gp = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(groups)), uintptr(gp), 0); e != 0 {
		// A user namespace made without newgidmap denies setgroups: the
		// primary group alone needs none.
		if e != unix.EPERM || !onlyGroup(s.Groups, s.GID) {
			return fmt.Errorf("setgroups %v: %w (supplementary groups need a user namespace made with newgidmap, or root)", s.Groups, e)
		}
	}
	if _, _, e := unix.RawSyscall(sysSetresgid, uintptr(s.GID), uintptr(s.GID), uintptr(s.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", s.GID, e)
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uintptr(s.UID), uintptr(s.UID), uintptr(s.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", s.UID, e)
	}
	if s.UID == 0 {
		if err := limitCapabilities(keep); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	if err := loadSeccomp(filter); err != nil {
		return err
	}
	err = syscall.Exec(s.Path, s.Args, s.Env)
	return fmt.Errorf("exec %s: %w", s.Path, err)
}

func onlyGroup(groups []uint32, gid uint32) bool {
	for _, g := range groups {
		if g != gid {
			return false
		}
	}
	return true
}

// initFailed is the exit code of an init step that failed before the
// command started.
const initFailed = 125

// viaInit turns cmd into a start of c.Init as the sandbox's init, with
// the spec on file descriptor 3. It creates the mount points the root
// lacks and returns them (the caller removes them after the command).
func viaInit(cmd *exec.Cmd, c Command, iso Isolation, userNS bool, root, argv0, dir string) (*mountPoints, func(), error) {
	created := &mountPoints{}
	points := []struct {
		name string
		dir  bool
	}{{"proc", true}, {"dev", true}, {"sys", true}, {"etc/resolv.conf", false}, {"etc/hosts", false}}
	caps := defaultCapabilities
	if !userNS {
		// Outside a user namespace CAP_MKNOD makes real devices.
		caps = withoutMknod
	}
	if iso == Chroot {
		points, caps = nil, chrootCapabilities
		var err error
		if created, err = chrootDevices(root); err != nil {
			return created, nil, err
		}
		if err := created.pipes(root, c.Pipes); err != nil {
			return created, nil, err
		}
	}
	for _, m := range points {
		p := filepath.Join(root, m.name)
		// Mount points must be plain paths of the root: a symlink
		// would be followed on the host before the chroot.
		resolved, err := securejoin.SecureJoin(root, m.name)
		if err != nil || resolved != p {
			return created, nil, fmt.Errorf("the stage's /%s is or goes through a symlink: the sandbox mounts there, so it must be a plain %s", m.name, map[bool]string{true: "directory", false: "file"}[m.dir])
		}
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Dir(p)); !m.dir && err != nil {
			continue // no /etc: nothing to mount the host's files over
		}
		created.remember(filepath.Dir(p))
		if m.dir {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			return created, nil, fmt.Errorf("creating the mount point /%s: %w", m.name, err)
		}
		created.paths = append(created.paths, p)
	}
	spec := initSpec{Root: root, Path: argv0, Args: cmd.Args, Env: c.Env, Dir: dir,
		UID: c.UID, GID: c.GID, Groups: c.Groups, NewNet: c.Network == NetworkNone, Mode: iso, Caps: caps}
	if iso != Chroot {
		spec.Pipes = c.Pipes
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return created, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return created, nil, err
	}
	go func() { _, _ = w.Write(data); w.Close() }()
	cmd.Path = c.Init
	cmd.Args = []string{c.Init, initArg}
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{r}
	// init chroots (or pivots) and switches user itself.
	cmd.SysProcAttr.Chroot = ""
	cmd.SysProcAttr.Credential = nil
	return created, func() { r.Close() }, nil
}

// chrootDevices gives a chrooted command (no mount namespace, so no /dev
// mount) the usual device nodes, made with mknod where the root lacks
// them — Docker's default capabilities include CAP_MKNOD — and removed
// after the command, like mount points. Without them, "cmd 2>/dev/null"
// would fail, or create a regular file the snapshot would keep.
func chrootDevices(root string) (*mountPoints, error) {
	made := &mountPoints{}
	dev := filepath.Join(root, "dev")
	if resolved, err := securejoin.SecureJoin(root, "dev"); err != nil || resolved != dev {
		return made, fmt.Errorf("the stage's /dev is or goes through a symlink: the sandbox makes device nodes there, so it must be a plain directory")
	}
	if _, err := os.Lstat(dev); errors.Is(err, os.ErrNotExist) {
		made.remember(root)
		if err := os.Mkdir(dev, 0o755); err != nil {
			return made, fmt.Errorf("creating /dev: %w", err)
		}
		made.paths = append(made.paths, dev)
	}
	made.remember(dev)
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := filepath.Join(dev, d.name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			if !errors.Is(err, unix.EPERM) {
				return made, fmt.Errorf("creating /dev/%s: %w", d.name, err)
			}
			// No CAP_MKNOD (a user namespace): the host's node, bound
			// where mounts are permitted; else the command does without.
			if werr := os.WriteFile(p, nil, 0o666); werr != nil {
				break
			}
			if merr := unix.Mount("/dev/"+d.name, p, "", unix.MS_BIND, ""); merr != nil {
				_ = os.Remove(p)
				break
			}
			made.mounts = append(made.mounts, p)
			made.paths = append(made.paths, p)
			continue
		}
		_ = unix.Chmod(p, 0o666)
		made.paths = append(made.paths, p)
	}
	return made, nil
}

// pipes writes Command.Pipes into the root's /dev/pipes for a chrooted
// command (no mount namespace for a tmpfs), to be removed after it.
func (m *mountPoints) pipes(root string, files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	dir := filepath.Join(root, PipesDir)
	if resolved, err := securejoin.SecureJoin(root, PipesDir); err != nil || resolved != dir {
		return fmt.Errorf("the stage's %s is or goes through a symlink: the sandbox writes the heredoc scripts there", PipesDir)
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		m.remember(filepath.Dir(dir))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", PipesDir, err)
		}
		m.paths = append(m.paths, dir)
	}
	m.remember(dir)
	for name, data := range files {
		p := filepath.Join(dir, filepath.Base(name))
		if err := os.WriteFile(p, data, 0o755); err != nil {
			return fmt.Errorf("writing %s/%s: %w", PipesDir, name, err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
		m.paths = append(m.paths, p)
	}
	return nil
}

// writePipes mounts a tmpfs at /dev/pipes in the sandbox's /dev and writes
// the scripts there, then makes it read-only (exec allowed, unlike /dev).
func writePipes(dir string, files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", PipesDir, err)
	}
	if err := unix.Mount("pipes", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=16m"); err != nil {
		return fmt.Errorf("mounting %s: %w", PipesDir, err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o755); err != nil {
			return fmt.Errorf("writing %s/%s: %w", PipesDir, name, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", PipesDir, err)
	}
	return nil
}

// mountPoints are the mount points viaInit made, and the times of the
// directories they were made in.
type mountPoints struct {
	mounts  []string // bound over some of the paths: unmounted first
	paths   []string
	parents []string
	times   [][2]unix.Timespec
}

func (m *mountPoints) remember(dir string) {
	for _, p := range m.parents {
		if p == dir {
			return
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return
	}
	m.parents = append(m.parents, dir)
	m.times = append(m.times, [2]unix.Timespec{st.Atim, st.Mtim})
}

// remove removes the mount points (deepest first) if they are still
// empty, and puts back the modification times of the directories they
// were made in: a command that changed nothing leaves no trace there for
// a snapshot to find.
func (m *mountPoints) remove() {
	if m == nil {
		return
	}
	for _, p := range m.mounts {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
	for i := len(m.paths) - 1; i >= 0; i-- {
		_ = os.Remove(m.paths[i])
	}
	for i, dir := range m.parents {
		ts := m.times[i]
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
}

// mounts sets up the command's view: a fresh /proc, a /dev with the
// usual nodes, a read-only /sys, the host's resolv.conf and hosts. The
// mounts exist only in the sandbox's mount namespace.
func (s *initSpec) mounts() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// pivot_root needs the root to be a mount point.
	if err := unix.Mount(s.Root, s.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding the root onto itself: %w", err)
	}
	at := func(p string) string { return filepath.Join(s.Root, p) }
	if err := unix.Mount("proc", at("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := unix.Mount("tmpfs", at("dev"), "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		dst := at("dev/" + d)
		if err := os.WriteFile(dst, nil, 0o666); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d, err)
		}
		if err := unix.Mount("/dev/"+d, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", d, err)
		}
	}
	for _, d := range []string{"shm", "pts"} {
		if err := os.Mkdir(at("dev/"+d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("shm", at("dev/shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mounting /dev/shm: %w", err)
	}
	for _, l := range [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}} {
		if err := os.Symlink(l[0], at("dev/"+l[1])); err != nil {
			return err
		}
	}
	if err := writePipes(at(PipesDir), s.Pipes); err != nil {
		return err
	}
	// sysfs needs a network namespace of our own; else the host's, read-only.
	if s.NewNet {
		if err := unix.Mount("sysfs", at("sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting /sys: %w", err)
		}
	} else {
		if err := unix.Mount("/sys", at("sys"), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding /sys: %w", err)
		}
		if err := unix.Mount("", at("sys"), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("making /sys read-only: %w", err)
		}
	}
	for _, f := range []string{"resolv.conf", "hosts"} {
		if _, err := os.Stat("/etc/" + f); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := os.Lstat(at("etc/" + f)); err != nil {
			continue // the stage has no /etc
		}
		if err := unix.Mount("/etc/"+f, at("etc/"+f), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /etc/%s: %w", f, err)
		}
		_ = unix.Mount("", at("etc/"+f), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
	}
	return nil
}

// pivotRoot makes root the mount namespace's root and detaches the old
// one (runc's way: pivot_root(".", ".") stacks the old root on the new,
// and a lazy unmount of "." removes it), so no path, fd or chroot trick
// leads back to the host's files.
func pivotRoot(root string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}

// Docker's default masked and read-only paths (moby's oci defaults):
// kernel interfaces a container must neither read nor write.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// maskPaths hides the masked paths (a file under /dev/null, a directory
// under an empty read-only tmpfs) and makes the read-only ones so, inside
// the new root.
func maskPaths() error {
	for _, p := range maskedPaths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // not on this kernel
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "nr_blocks=1,nr_inodes=2")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range readonlyPaths {
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
		flags := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount(p, p, "", flags|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}
