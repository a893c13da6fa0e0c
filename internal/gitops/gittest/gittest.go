// Package gittest makes real git repositories for tests: a bare repository
// seeded with files, and a `git daemon` serving it on a loopback port.
package gittest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Git runs git in dir and returns its trimmed output; it fails the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=seed", "GIT_AUTHOR_EMAIL=seed@example.com",
		"GIT_COMMITTER_NAME=seed", "GIT_COMMITTER_EMAIL=seed@example.com",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// RequireGit fails (or, under -short, skips) when git is not installed.
func RequireGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if testing.Short() {
			t.Skip("git is not installed")
		}
		t.Fatalf("git is needed (Debian package git): %v", err)
	}
}

// BareRepo creates <parent>/<name>.git with one commit on main holding files.
func BareRepo(t testing.TB, parent, name string, files map[string]string) string {
	t.Helper()
	RequireGit(t)
	bare := filepath.Join(parent, name+".git")
	Git(t, parent, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	work := t.TempDir()
	Git(t, work, "init", "--quiet", "--initial-branch=main")
	for f, content := range files {
		p := filepath.Join(work, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, work, "add", "-A")
	Git(t, work, "commit", "--quiet", "-m", "seed")
	Git(t, work, "push", "--quiet", bare, "main")
	return bare
}

// Daemon serves every repository under base over git:// (push enabled) on a
// free loopback port until the test ends, and returns git://127.0.0.1:PORT.
func Daemon(t testing.TB, base string) string {
	t.Helper()
	RequireGit(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--base-path="+base, "--max-connections=64", base)
	logs, err := os.CreateTemp(t.TempDir(), "git-daemon-*.log")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	// The daemon forks a child per connection: signal the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting git daemon: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", l.Addr().String(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logs.Name())
			t.Fatalf("git daemon did not listen on port %d: %v\n%s", port, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("git://127.0.0.1:%d", port)
}

// Log returns `git log --format=%s` of branch in a bare repository, newest first.
func Log(t testing.TB, bare, branch string) []string {
	t.Helper()
	out := Git(t, bare, "log", "--format=%s", branch)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// Show returns a file's content at branch in a bare repository.
func Show(t testing.TB, bare, branch, file string) string {
	t.Helper()
	return Git(t, bare, "show", branch+":"+file)
}
