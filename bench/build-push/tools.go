package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// job is one build by one tool.
type job struct {
	sc        scenario
	round     int
	ctxDir    string // the context (Dockerfile + app/)
	host      string // the tool's proxy
	ref       string // destination, through the proxy
	cacheRepo string // through the proxy
	baseRef   string // through the proxy
	log       io.Writer
	scratch   string // a fresh directory for the tool's local state
}

// sample is what one build cost.
type sample struct {
	d time.Duration
	// inner is the tool's process alone, without its container's start
	// (kaniko; 0 for the others).
	inner time.Duration
	// shm: see built.
	shm int64
	// rss is the peak resident set of the tool's process (the largest
	// process of its tree for hoist and buildah: wait4's ru_maxrss); -1
	// when unknown.
	rss int64
	traffic
}

// tool builds and pushes a job's image.
type tool struct {
	name  string // hoist, kaniko, buildah
	label string // report label
	build func(ctx context.Context, j job) (built, error)
}

// built is what a tool measured of its own build.
type built struct {
	d time.Duration // the build, as a CI job waits for it
	// inner is the build tool's own process alone, without starting its
	// container (kaniko only; 0 otherwise).
	inner time.Duration
	rss   int64
	// shm is the peak growth of /dev/shm's use during the build: memory
	// a tool holds in files there, which no RSS shows.
	shm int64
}

// timed runs f and returns its duration.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// hoistTool runs build-push. With onDisk, RUN unpacks stages into the
// build's scratch directory on disk (--scratch-dir) instead of choosing
// memory (/dev/shm) as it does by default when the tmpfs has room: the
// situation inside a container, whose /dev/shm is 64 MiB.
func hoistTool(bin string, onDisk bool) tool {
	name, label := "hoist", "hoist `build-push`"
	if onDisk {
		name, label = "hoist-disk", "hoist `build-push --scratch-dir <disk>`"
	}
	return tool{name: name, label: label, build: func(ctx context.Context, j job) (built, error) {
		args := []string{"--context", j.ctxDir, "--tags", j.ref, "--build-arg", "BASE=" + j.baseRef,
			"--cache", "--cache-repo", j.cacheRepo, "--insecure-registries", j.host}
		if onDisk {
			args = append(args, "--scratch-dir", j.scratch)
		}
		// A fresh HOME and cache directories: no local state survives a run.
		env := []string{"HOME=" + j.scratch, "XDG_CACHE_HOME=" + filepath.Join(j.scratch, ".cache"), "TMPDIR=" + j.scratch}
		var st *os.ProcessState
		d, err := timed(func() (err error) {
			st, err = command(ctx, j.log, env, bin, args...)
			return err
		})
		return built{d: d, rss: maxRSS(st)}, err
	}}
}

// kanikoTool runs kaniko's executor. The best case (the targets' peer)
// caches COPY layers too; kaniko-default keeps kaniko's default
// --cache-copy-layers=false, as most jobs run it: a warm build then
// executes its COPY, which needs the unpacked base.
func kanikoTool(image string, defaults bool) tool {
	name, label, copyLayers := "kaniko", "kaniko v1.24.0", "--cache-copy-layers=true"
	if defaults {
		name, label, copyLayers = "kaniko-default", "kaniko v1.24.0 (default --cache-copy-layers=false)", "--cache-copy-layers=false"
	}
	return tool{name: name, label: label, build: func(ctx context.Context, j job) (built, error) {
		// Not --rm: removing the container is not part of the build, and
		// its start and end times tell the executor's own time.
		cidFile := filepath.Join(j.scratch, "cid")
		args := []string{"run", "--cidfile", cidFile, "--network", "host", "-v", j.ctxDir + ":/workspace:ro", image,
			"--context", "dir:///workspace", "--dockerfile", "/workspace/Dockerfile",
			"--destination", j.ref, "--build-arg", "BASE=" + j.baseRef,
			"--cache=true", copyLayers, "--cache-repo", j.cacheRepo,
			"--insecure", "--insecure-pull", "--skip-tls-verify", "--skip-tls-verify-pull"}
		// kaniko's executor is not our child (the engine starts it): watch
		// its high-water mark of resident memory while it runs.
		watch := watchHWM(ctx, "/kaniko/executor", j.ref)
		d, err := timed(func() error {
			_, err := command(ctx, j.log, nil, "docker", args...)
			return err
		})
		b := built{d: d, rss: watch()}
		cid, rerr := os.ReadFile(cidFile)
		if rerr != nil {
			return b, errors.Join(err, fmt.Errorf("reading the container id: %w", rerr))
		}
		id := strings.TrimSpace(string(cid))
		var ierr error
		b.inner, ierr = containerRuntime(ctx, id)
		if _, rmErr := command(ctx, j.log, nil, "docker", "rm", "-f", id); rmErr != nil && err == nil {
			err = rmErr
		}
		if err == nil {
			err = ierr
		}
		return b, err
	}}
}

func buildahTool(bin string) tool {
	return tool{name: "buildah", label: "buildah (chroot, vfs)", build: func(ctx context.Context, j job) (built, error) {
		storage := []string{"--root", filepath.Join(j.scratch, "root"), "--runroot", filepath.Join(j.scratch, "run"), "--storage-driver", "vfs"}
		env := []string{"HOME=" + j.scratch, "TMPDIR=" + j.scratch, "BUILDAH_ISOLATION=chroot"}
		bud := append(append([]string{}, storage...), "bud", "--isolation", "chroot", "--tls-verify=false",
			"--layers", "--cache-from", j.cacheRepo, "--cache-to", j.cacheRepo,
			"--build-arg", "BASE="+j.baseRef, "-f", filepath.Join(j.ctxDir, "Dockerfile"), "-t", j.ref, j.ctxDir)
		push := append(append([]string{}, storage...), "push", "--tls-verify=false", j.ref, "docker://"+j.ref)
		bic := filepath.Join(j.scratch, "blob-info-cache")
		b := built{rss: -1}
		var err error
		b.d, err = timed(func() error {
			st, err := command(ctx, j.log, env, "unshare", privateCache(bic, bin, bud)...)
			b.rss = maxRSS(st)
			if err != nil {
				return err
			}
			st, err = command(ctx, j.log, env, "unshare", privateCache(bic, bin, push)...)
			b.rss = max(b.rss, maxRSS(st))
			return err
		})
		return b, err
	}}
}

// buildahBlobInfoCache is where buildah, as root, keeps what it learnt
// about blobs (which registry repositories hold which digests) whatever
// its --root: state that would outlive a build.
const buildahBlobInfoCache = "/var/lib/containers/cache"

// privateCache is the argument list of unshare(1) running bin with args
// in a private mount namespace where buildahBlobInfoCache is dir: every
// build starts with an empty one and leaves nothing on the host.
func privateCache(dir, bin string, args []string) []string {
	script := `mkdir -p "$1" "$2" && mount --bind "$1" "$2" && shift 2 && exec "$@"`
	return append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", dir, buildahBlobInfoCache, bin}, args...)
}

// shmDir is the host's memory file system, where a tool may keep files
// in RAM.
const shmDir = "/dev/shm"

// watchShm polls the space used in shmDir and returns a function that
// stops and returns the peak growth over the use at the start (0 when
// shmDir is not there). Other processes' use of /dev/shm during the
// build counts too.
func watchShm(ctx context.Context) func() int64 {
	used := func() int64 {
		var st unix.Statfs_t
		if unix.Statfs(shmDir, &st) != nil {
			return -1
		}
		return int64(st.Blocks-st.Bfree) * st.Bsize
	}
	base := used()
	if base < 0 {
		return func() int64 { return 0 }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan int64, 1)
	go func() {
		peak := base
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, used())
			select {
			case <-ctx.Done():
				done <- peak - base
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 { cancel(); return <-done }
}

// containerRuntime is how long a finished container's process ran, from
// the engine's start and finish times.
func containerRuntime(ctx context.Context, id string) (time.Duration, error) {
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.StartedAt}} {{.State.FinishedAt}}", id).Output()
	if err != nil {
		return 0, fmt.Errorf("docker inspect %s: %w", id, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return 0, fmt.Errorf("docker inspect %s: unexpected %q", id, out)
	}
	var ts [2]time.Time
	for i := range f {
		if ts[i], err = time.Parse(time.RFC3339Nano, f[i]); err != nil {
			return 0, fmt.Errorf("docker inspect %s: %w", id, err)
		}
	}
	return ts[1].Sub(ts[0]), nil
}

// command runs name with args, its output to log, the environment plus
// env, and returns its process state (for the resource usage).
func command(ctx context.Context, log io.Writer, env []string, name string, args ...string) (*os.ProcessState, error) {
	c := exec.CommandContext(ctx, name, args...)
	var tail tailBuffer
	w := io.MultiWriter(log, &tail)
	c.Stdout, c.Stderr = w, w
	c.Env = append(os.Environ(), "GITHUB_ACTIONS=", "GITLAB_CI=")
	c.Env = append(c.Env, env...)
	fmt.Fprintf(log, "$ %s %s\n", name, strings.Join(args, " "))
	err := c.Run()
	if err != nil {
		return c.ProcessState, fmt.Errorf("%s: %w\n%s", name, err, tail.String())
	}
	return c.ProcessState, nil
}

// maxRSS is a finished process's ru_maxrss in bytes (the largest of the
// process and its waited-for descendants), or -1.
func maxRSS(st *os.ProcessState) int64 {
	if st == nil {
		return -1
	}
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10
	}
	return -1
}

// watchHWM polls /proc for a process whose command line starts with exe
// and contains marker, and follows its VmHWM (peak resident set) until it
// exits. The returned function stops watching and returns the last value
// read (-1 if the process was never seen).
func watchHWM(ctx context.Context, exe, marker string) func() int64 {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan int64, 1)
	go func() {
		hwm, pid := int64(-1), 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if pid == 0 {
				pid = findProcess(exe, marker)
			}
			if pid != 0 {
				if v, err := vmHWM(pid); err == nil {
					hwm = max(hwm, v)
				} else {
					pid = -1 // gone; keep the last value
				}
			}
			select {
			case <-ctx.Done():
				done <- hwm
				return
			case <-tick.C:
			}
			if pid < 0 {
				<-ctx.Done()
				done <- hwm
				return
			}
		}
	}()
	return func() int64 { cancel(); return <-done }
}

func findProcess(exe, marker string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if args[0] == exe && bytes.Contains(b, []byte(marker)) {
			return pid
		}
	}
	return 0
}

func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// tailBuffer keeps the last 3,000 bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 3000 {
		t.b = t.b[len(t.b)-3000:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// removeTree removes a tool's scratch directory, first detaching any
// mount a tool left inside it (deepest first), never deleting through one.
func removeTree(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mountinfo: %w", err)
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s (left by a tool): %w", m, err)
		}
	}
	return os.RemoveAll(dir)
}
