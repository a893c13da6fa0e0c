// Package sandbox runs a command inside a stage's root filesystem, never
// on the host's, as a container would.
//
// Isolation namespaces (with Command.Init, a binary whose main calls Init
// first, normally the running hoist): new user, mount, PID, IPC and UTS
// namespaces (and network for network "none"); as root the user
// namespace maps every id of the process onto itself, so the stage's
// owners stay as they are and the capabilities the command keeps count
// inside it only. The init step mounts a fresh /proc, a /dev of the usual
// nodes, a read-only /sys and the host's /etc/resolv.conf and /etc/hosts,
// enters the root with pivot_root and detaches the host's, masks and
// write-protects Docker's default paths (/proc/kcore, /proc/sys,
// /sys/firmware…), bounds the capabilities to Docker's default set, sets
// no_new_privs and loads Docker's default seccomp profile, then executes
// the command. See runc's libcontainer (rootfs_linux.go, init_linux.go),
// which it follows.
//
// Isolation chroot (the situation inside a container under Docker's
// default seccomp profile, where unshare and mount are refused but chroot
// is not): the init step chroots, drops CAP_SYS_CHROOT and CAP_MKNOD as
// well, sets no_new_privs and loads the same filter; the command gets
// the usual /dev nodes (made with mknod, or bound, where permitted, and
// removed after it) and no /proc. Its trust boundary is the container
// the job runs in.
//
// Conceal and Rootless prepare the process that runs commands: its
// credentials out of /proc, and a user namespace of its own when it is
// not root. Mount points the root lacked are created for the command and
// removed after it. /tmp is the stage's own directory, as in docker build.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Isolation is how a command is kept inside its root.
type Isolation string

const (
	Auto       Isolation = "auto"
	Namespaces Isolation = "namespaces"
	Chroot     Isolation = "chroot"
)

// ParseIsolation reads the isolation input.
func ParseIsolation(s string) (Isolation, error) {
	switch Isolation(strings.ToLower(strings.TrimSpace(s))) {
	case "", Auto:
		return Auto, nil
	case Namespaces:
		return Namespaces, nil
	case Chroot:
		return Chroot, nil
	}
	return "", fmt.Errorf("isolation %q: use auto, namespaces or chroot", s)
}

// Network of a command.
type Network string

const (
	NetworkDefault Network = "default"
	NetworkNone    Network = "none"
)

// ParseNetwork reads a network input or RUN --network value.
func ParseNetwork(s string) (Network, error) {
	switch Network(strings.ToLower(strings.TrimSpace(s))) {
	case "", NetworkDefault:
		return NetworkDefault, nil
	case NetworkNone:
		return NetworkNone, nil
	}
	return "", fmt.Errorf("network %q: use default or none", s)
}

// Command is one command to run in a root.
type Command struct {
	Root string   // the root filesystem, on the host
	Args []string // argv; a name without "/" is looked up in PATH inside the root
	Env  []string
	Dir  string // working directory inside the root; "/" when empty
	// UID, GID and Groups the command runs as (USER, resolved by the
	// caller in the stage's /etc/passwd and /etc/group).
	UID, GID uint32
	Groups   []uint32
	Network  Network
	Stdout   io.Writer
	Stderr   io.Writer
	// TailLines of output kept for the error when the command fails
	// (default 20).
	TailLines int
	// Init is a binary whose main calls Init first (usually the running
	// hoist, os.Executable). With it, isolation namespaces also gives the
	// command a fresh /proc, a minimal /dev, a read-only /sys and the
	// host's /etc/resolv.conf and /etc/hosts; without it, none of them.
	Init string
	// Pipes are files the command finds at /dev/pipes/<name>, executable
	// and read-only, as BuildKit mounts a RUN's heredoc scripts there;
	// they are never part of the root's content (a tmpfs under
	// namespaces; made and removed around the command under chroot, the
	// directories' times put back).
	Pipes map[string][]byte
}

// PipesDir is where Command.Pipes appear.
const PipesDir = "/dev/pipes"

// ErrNotPermitted wraps the refusal of an isolation by the host.
var ErrNotPermitted = errors.New("not permitted here")

// ExitError is a command that ran and failed.
type ExitError struct {
	Args []string
	Code int    // exit status, or 128+signal
	Tail string // the last lines of its output
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit code %d", strings.Join(e.Args, " "), e.Code)
	if e.Tail != "" {
		msg += "; last output:\n" + e.Tail
	}
	return msg
}

// Run runs c isolated as iso asks (Auto: namespaces, else chroot) and
// returns the isolation used. Chroot needs root (CAP_SYS_CHROOT): a
// process that is not root gets the namespaces' refusal, which names the
// kernel setting that forbids them.
func Run(ctx context.Context, c Command, iso Isolation) (Isolation, error) {
	switch iso {
	case Namespaces, Chroot:
		return iso, run(ctx, c, iso)
	case Auto, "":
		err := run(ctx, c, Namespaces)
		if errors.Is(err, ErrNotPermitted) && os.Geteuid() == 0 {
			if cerr := run(ctx, c, Chroot); cerr != nil {
				return Chroot, fmt.Errorf("%w (namespaces were refused too: %v)", cerr, err)
			}
			return Chroot, nil
		}
		return Namespaces, err
	}
	return "", fmt.Errorf("isolation %q: use auto, namespaces or chroot", iso)
}

func run(ctx context.Context, c Command, iso Isolation) error {
	err := runIn(ctx, c, iso, true)
	var ie *initError
	if iso == Namespaces && errors.As(err, &ie) && ie.procMasked && os.Geteuid() == 0 && !inUserNamespace() {
		// Root of a container whose /proc Docker masked (run with
		// SYS_ADMIN and seccomp unconfined, not privileged): a user
		// namespace may not mount a fresh /proc over masked entries.
		// The container is the outer boundary; inside it the command
		// still gets pivot_root, the masked paths, the bounded
		// capabilities (less CAP_MKNOD), no_new_privs and seccomp.
		return runIn(ctx, c, iso, false)
	}
	return err
}

// initError is the sandbox's init step failing before the command ran.
type initError struct {
	iso        Isolation
	msg        string
	procMasked bool // a fresh /proc was refused (mount_too_revealing)
}

func (e *initError) Error() string {
	return fmt.Sprintf("%v: isolation %s: setting up the sandbox failed: %s", ErrNotPermitted, e.iso, e.msg)
}

func (e *initError) Unwrap() error { return ErrNotPermitted }

// inUserNamespace tells whether the process runs in a user namespace
// other than the host's.
func inUserNamespace() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return strings.Join(strings.Fields(string(data)), " ") != "0 0 4294967295"
}

// runIn runs c once; userNS false leaves out the user namespace.
func runIn(ctx context.Context, c Command, iso Isolation, userNS bool) error {
	if len(c.Args) == 0 {
		return errors.New("no command to run")
	}
	if iso == Namespaces && c.Init == "" {
		return errors.New("isolation namespaces needs an init binary (Command.Init: a program whose main calls sandbox.Init first)")
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return fmt.Errorf("root %s: %w", c.Root, err)
	}
	argv0, err := lookPath(root, c.Args[0], c.Env)
	if err != nil {
		return err
	}
	dir := c.Dir
	if dir == "" {
		dir = "/"
	}
	tail := &tailWriter{max: c.TailLines}
	if tail.max <= 0 {
		tail.max = 20
	}
	// argv0 is absolute: CommandContext looks nothing up on the host.
	cmd := exec.CommandContext(ctx, argv0)
	cmd.Args = c.Args
	cmd.Env = c.Env
	cmd.Dir = dir
	// One writer (so one pipe, in order) when both streams go to the
	// same place; else each stream keeps its own partial line.
	cmd.Stdout = multi(c.Stdout, tail.stream())
	if c.Stderr == c.Stdout {
		cmd.Stderr = cmd.Stdout
	} else {
		cmd.Stderr = multi(c.Stderr, tail.stream())
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups},
	}
	// Killed with its process group (its session) when ctx ends.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if iso == Namespaces {
		attr := cmd.SysProcAttr
		// A user namespace always: as root it maps the ids this process
		// has onto themselves (the stage's owners stay as they are), and
		// the capabilities the command keeps count inside it only.
		attr.Cloneflags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS
		if c.Network == NetworkNone {
			attr.Cloneflags |= unix.CLONE_NEWNET
		}
		if userNS {
			maps, err := userMaps(c)
			if err != nil {
				return err
			}
			attr.Cloneflags |= unix.CLONE_NEWUSER
			attr.UidMappings, attr.GidMappings = maps.uids, maps.gids
			attr.GidMappingsEnableSetgroups = maps.setgroups
		}
	} else if !effective(unix.CAP_SYS_CHROOT) {
		return classify(Chroot, unix.EPERM)
	} else if c.Network == NetworkNone {
		return fmt.Errorf("%w: network none needs a network namespace, and isolation chroot has none: use isolation namespaces where it is permitted, or drop --network=none", ErrNotPermitted)
	}
	var created *mountPoints
	if c.Init != "" {
		var cleanup func()
		created, cleanup, err = viaInit(cmd, c, iso, userNS, root, argv0, dir)
		if err != nil {
			created.remove()
			return err
		}
		defer cleanup()
	} else if iso == Chroot {
		if created, err = chrootDevices(root); err != nil {
			created.remove()
			return err
		}
		if err := created.pipes(root, c.Pipes); err != nil {
			created.remove()
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		created.remove()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(iso, err)
	}
	err = cmd.Wait()
	created.remove()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", strings.Join(c.Args, " "), ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		t := tail.String()
		if code == initFailed && strings.Contains(t, "sandbox init: ") {
			msg := t[strings.LastIndex(t, "sandbox init: "):]
			return &initError{iso: iso, msg: msg, procMasked: strings.Contains(msg, "mounting /proc: operation not permitted")}
		}
		return &ExitError{Args: c.Args, Code: code, Tail: t}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(c.Args, " "), err)
	}
	return nil
}

// classify turns a start failure into an error naming the missing
// privilege and the fix.
func classify(iso Isolation, err error) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSPC) && !errors.Is(err, unix.EUSERS) {
		return fmt.Errorf("starting the command (isolation %s): %w", iso, err)
	}
	if iso == Namespaces {
		why := userNamespaceRefusal("/proc/sys")
		if os.Geteuid() != 0 {
			return fmt.Errorf("%w: isolation namespaces: build-push is not root, so RUN needs an unprivileged user namespace, and creating one was refused (%v)%s: "+
				"allow unprivileged user namespaces, or run build-push as root (in a container, root is where isolation chroot works)", ErrNotPermitted, err, why)
		}
		return fmt.Errorf("%w: isolation namespaces: creating user/mount/pid/ipc/uts namespaces was refused (%v)%s: "+
			"allow them (e.g. docker run --security-opt seccomp=unconfined, or sysctl user.max_user_namespaces>0), or use isolation chroot", ErrNotPermitted, err, why)
	}
	return fmt.Errorf("%w: isolation chroot: chroot was refused (%v): it needs CAP_SYS_CHROOT (root in a container keeps it by default; "+
		"do not drop it with --cap-drop, or run build-push as root)", ErrNotPermitted, err)
}

// lookPath finds name inside root the way the command's shell would: as
// given when it contains a slash, else in the PATH of env.
func lookPath(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil // relative to Dir inside the root, resolved by exec
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if !path.IsAbs(d) {
			continue
		}
		cand := path.Join(d, name)
		host, err := securejoin.SecureJoin(root, cand)
		if err != nil {
			continue
		}
		fi, err := os.Stat(host) // host resolved inside the root: no symlink left to escape
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the stage's PATH (%s): install it in an earlier step or use its full path", name, pathEnv)
}

func multi(w io.Writer, tail io.Writer) io.Writer {
	if w == nil {
		return tail
	}
	return io.MultiWriter(w, tail)
}

// tailWriter keeps the last max complete lines written to its streams
// (each cut to 1 KiB), and their unfinished lines.
type tailWriter struct {
	mu      sync.Mutex
	max     int
	lines   []string
	streams []*tailStream
}

type tailStream struct {
	t   *tailWriter
	cur []byte
}

func (t *tailWriter) stream() io.Writer {
	s := &tailStream{t: t}
	t.streams = append(t.streams, s)
	return s
}

func (s *tailStream) Write(p []byte) (int, error) {
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			t.push(string(s.cur))
			s.cur = s.cur[:0]
			continue
		}
		if len(s.cur) < 1024 {
			s.cur = append(s.cur, b)
		}
	}
	return len(p), nil
}

func (t *tailWriter) push(line string) {
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	for _, s := range t.streams {
		if len(s.cur) > 0 {
			lines = append(lines, string(s.cur))
		}
	}
	if len(lines) > t.max {
		lines = lines[len(lines)-t.max:]
	}
	return strings.Join(lines, "\n")
}
