package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// escapeAttempts is the regression list (internal/sandbox/testdata/helper
// tries each and prints "NAME: blocked (…)" or "NAME: ESCAPED (…)").
var escapeAttempts = []string{
	"chroot-escape", "proc1-root", "proc-self-root", "environ-cmdline", "mount",
	"mknod-block", "proc-sys-write", "sys-write", "module", "ptrace-parent", "unshare-userns",
}

// Credentials build-push is given, every one starting with the helper's
// needle "CANARY-7c2d".
var escapeCanaries = map[string]string{
	"INPUT_PASSWORD": "CANARY-7c2d-input-password",
	"GITHUB_TOKEN":   "CANARY-7c2d-github-token",
	"CI_JOB_TOKEN":   "CANARY-7c2d-ci-job-token",
	"NPM_TOKEN":      "CANARY-7c2d-secret-value", // read by --secrets npm=env:NPM_TOKEN
}

const flagCanary = "CANARY-7c2d-flag-password"

// TestRunCannotEscapeOrReadCredentials runs real RUN steps through the
// build-push binary (this test binary as its main: Conceal, Rootless,
// the component, the sandbox) with credentials in its environment and
// on its command line: under each isolation, as root and as uid 65534,
// the escape list is blocked from inside the RUN, no host marker is
// written, and no process of the build — build-push itself, its user
// namespace child, the sandbox's init, the RUN — shows a credential in
// /proc/<pid>/environ or cmdline at any moment after build-push started.
func TestRunCannotEscapeOrReadCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker-registry (the real registry)")
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	base, err := testrig.BusyboxImage()
	require.NoError(t, err)
	testrig.PushImage(t, base, reg.Host+"/base/busybox:1")

	dir := testrig.SharedDir(t)
	helper := filepath.Join(dir, "helper")
	build := exec.Command("go", "build", "-o", helper, "../../internal/sandbox/testdata/helper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	var table []string
	for _, c := range []struct {
		name      string
		isolation string
		nobody    bool
	}{
		{"namespaces as root", "namespaces", false},
		{"chroot as root", "chroot", false},
		{"namespaces as uid 65534", "namespaces", true},
		{"chroot as uid 65534", "chroot", true},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			hostDir := filepath.Join(testrig.SharedDir(t), "host")
			require.NoError(t, os.Mkdir(hostDir, 0o777))
			require.NoError(t, os.Chmod(hostDir, 0o777))
			ctxDir := filepath.Join(testrig.SharedDir(t), "app")
			require.NoError(t, os.Mkdir(ctxDir, 0o755))
			data, err := os.ReadFile(helper)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "helper"), data, 0o755))
			df := fmt.Sprintf("FROM %s/base/busybox:1\nCOPY helper /usr/local/bin/helper\n"+
				"RUN --mount=type=secret,id=npm [\"/usr/local/bin/helper\", \"escape\", %q]\n", reg.Host, hostDir)
			require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644))

			args := []string{"--context", ctxDir, "--tags", reg.Host + "/escape:" + strconv.Itoa(len(table)),
				"--insecure-registries", reg.Host, "--isolation", c.isolation, "--secrets", "npm=env:NPM_TOKEN",
				"--username", "ci", "--password", flagCanary}
			var cmd *exec.Cmd
			if c.nobody {
				cmd = testrig.NobodyCommand(t, args...)
			} else {
				self, err := os.Executable()
				require.NoError(t, err)
				cmd = exec.Command(self, args...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
			}
			cmd.Env = append(cmd.Env, asMain+"=1")
			for k, v := range escapeCanaries {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var output bytes.Buffer
			cmd.Stdout, cmd.Stderr = &output, &output
			require.NoError(t, cmd.Start())
			leaks := watchCredentials(cmd.Process.Pid)
			err = cmd.Wait()
			seen, rootSeen, found := leaks()
			got := output.String()
			require.NoError(t, err, got)
			require.Empty(t, found, "a credential in /proc of a build process")
			require.Greater(t, seen, rootSeen, "the watcher read the build's other processes")
			require.Greater(t, rootSeen, 0, "the watcher read build-push's own /proc after it re-executed (Conceal)")

			lines := map[string]string{}
			for _, m := range regexp.MustCompile(`(?m)^#\d+ \| ([a-z0-9-]+): (blocked|ESCAPED|reachable|unreachable)(.*)$`).FindAllStringSubmatch(got, -1) {
				lines[m[1]] = m[2] + m[3]
			}
			for _, a := range escapeAttempts {
				require.Contains(t, lines, a, got)
				require.True(t, strings.HasPrefix(lines[a], "blocked"), "%s under %s: %s", a, c.name, lines[a])
				table = append(table, fmt.Sprintf("%-24s %-16s %s", c.name, a, lines[a]))
			}
			table = append(table, fmt.Sprintf("%-24s %-16s %s", c.name, "signal-parent", lines["signal-parent"]))
			entries, err := os.ReadDir(hostDir)
			require.NoError(t, err)
			require.Empty(t, entries, "a RUN wrote on the host")
			for _, v := range escapeCanaries {
				require.NotContains(t, got, v)
			}
			require.NotContains(t, got, flagCanary)
			require.Contains(t, got, "isolation="+c.isolation)
		})
	}
	t.Log("escape attempts, through build-push:\n" + strings.Join(table, "\n"))
}

// watchCredentials reads /proc/<pid>/environ and cmdline of pid and of
// every descendant, every few milliseconds, until the returned function
// is called: it reports how many process reads it made (of them, of pid)
// and any credential it found. pid itself counts once it has re-executed (before
// that, for a few milliseconds, it is the process the test started, with
// the environment the test gave it).
func watchCredentials(pid int) func() (int, int, []string) {
	var mu sync.Mutex
	seen, rootSeen := 0, 0
	var found []string
	stop := make(chan struct{})
	done := make(chan struct{})
	needle := []byte("CANARY-7c2d")
	go func() {
		defer close(done)
		for {
			for _, p := range descendants(pid) {
				env, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
				cmdline, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				if err1 != nil || err2 != nil {
					continue
				}
				if p == pid && !bytes.Contains(env, []byte("_HOIST_CONCEALED_FD=")) {
					continue // not re-executed yet
				}
				mu.Lock()
				seen++
				if p == pid {
					rootSeen++
				}
				for what, data := range map[string][]byte{"environ": env, "cmdline": cmdline} {
					if bytes.Contains(data, needle) {
						found = append(found, fmt.Sprintf("pid %d %s: %q", p, what, data))
					}
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() (int, int, []string) {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen, rootSeen, found
	}
}

// descendants are pid and the processes below it.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	out := []int{pid}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if containsInt(out, pp) && !containsInt(out, p) {
				out = append(out, p)
				changed = true
			}
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
