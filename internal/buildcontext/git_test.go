package buildcontext

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gitRepo is a bare repository with history: main (three commits, the
// first of which holds a 4 MiB file a shallow clone never transfers), a
// branch feature, a tag v1.0 on main's second commit.
type gitRepo struct {
	base    string // the directory served
	commits []string
	feature string
}

func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s:\n%s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (test/rig/install.sh installs it)")
	}
	work := t.TempDir()
	r := &gitRepo{base: t.TempDir()}
	gitCLI(t, work, "init", "-q", "-b", "main")
	noise := make([]byte, 4<<20)
	_, _ = rand.Read(noise)
	require.NoError(t, os.WriteFile(filepath.Join(work, "noise.bin"), noise, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "Dockerfile"), []byte("FROM scratch\nCOPY version /\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "version"), []byte("1\n"), 0o644))
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "commit", "-q", "-m", "one")
	r.commits = append(r.commits, gitCLI(t, work, "rev-parse", "HEAD"))
	gitCLI(t, work, "rm", "-q", "noise.bin")
	require.NoError(t, os.WriteFile(filepath.Join(work, "version"), []byte("2\n"), 0o644))
	gitCLI(t, work, "commit", "-q", "-am", "two")
	r.commits = append(r.commits, gitCLI(t, work, "rev-parse", "HEAD"))
	gitCLI(t, work, "tag", "v1.0")
	require.NoError(t, os.WriteFile(filepath.Join(work, "version"), []byte("3\n"), 0o644))
	gitCLI(t, work, "commit", "-q", "-am", "three")
	r.commits = append(r.commits, gitCLI(t, work, "rev-parse", "HEAD"))
	gitCLI(t, work, "checkout", "-q", "-b", "feature")
	require.NoError(t, os.WriteFile(filepath.Join(work, "version"), []byte("feature\n"), 0o644))
	gitCLI(t, work, "commit", "-q", "-am", "feature")
	r.feature = gitCLI(t, work, "rev-parse", "HEAD")
	gitCLI(t, work, "checkout", "-q", "main")
	gitCLI(t, r.base, "clone", "-q", "--bare", work, "app.git")
	return r
}

func (r *gitRepo) allowSHA(t *testing.T, allow bool) {
	gitCLI(t, filepath.Join(r.base, "app.git"), "config", "uploadpack.allowAnySHA1InWant", fmt.Sprint(allow))
}

// daemon serves the repository with `git daemon` (the git protocol).
func (r *gitRepo) daemon(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "git", "daemon", "--reuseaddr", "--export-all", "--base-path="+r.base,
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--enable=upload-pack", r.base)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 2 * time.Second // children keep the output open
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("git daemon did not listen:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("127.0.0.1:%d/app.git", port)
}

// smartHTTPS serves the repository with git http-backend (smart HTTP) over
// TLS, behind basic authentication: user/password, or a token as the user
// name with no password (kaniko's GIT_TOKEN). It counts the bytes served.
func (r *gitRepo) smartHTTPS(t *testing.T, user, password, token string) (host string, caFile string, served *atomic.Int64) {
	t.Helper()
	backend := &cgi.Handler{Path: gitExecPath(t) + "/git-http-backend", Env: []string{"GIT_PROJECT_ROOT=" + r.base, "GIT_HTTP_EXPORT_ALL=1"}}
	served = &atomic.Int64{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || !((u == user && p == password) || (u == token && p == "")) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(countingWriter{w, served}, req)
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	return strings.TrimPrefix(srv.URL, "https://") + "/app.git", caFile, served
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

func gitExecPath(t *testing.T) string {
	out, err := exec.Command("git", "--exec-path").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func version(t *testing.T, c *Context) string {
	b, err := os.ReadFile(filepath.Join(c.Dir, "version"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func TestGitDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts git daemon; skipped in -short mode")
	}
	r := newGitRepo(t)
	host := r.daemon(t)
	getenv := env("GIT_PULL_METHOD", "git")
	tests := []struct {
		name, frag, want string
		allowSHA         bool
	}{
		{"default branch", "", "3", false},
		{"full branch ref", "#refs/heads/feature", "feature", false},
		{"short branch name", "#feature", "feature", false},
		{"short tag name", "#v1.0", "2", false},
		{"full tag ref", "#refs/tags/v1.0", "2", false},
		{"ref and an older commit, fetched alone", "#refs/heads/main#" + r.commits[0], "1", true},
		{"ref and an older commit, the server refusing SHAs", "#refs/heads/main#" + r.commits[1], "2", false},
		{"a commit alone", "#" + r.commits[1], "2", true},
		{"the ref's own commit", "#refs/heads/main#" + r.commits[2], "3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.allowSHA(t, tt.allowSHA)
			c, err := Fetch(context.Background(), "git://"+host+tt.frag, Options{Getenv: getenv, TempDir: t.TempDir()})
			require.NoError(t, err)
			defer c.Close()
			require.Equal(t, tt.want, version(t, c))
			require.NoDirExists(t, filepath.Join(c.Dir, ".git"), "the build sees files, not the repository")
			if tt.want == "1" {
				require.FileExists(t, filepath.Join(c.Dir, "noise.bin"))
			} else {
				require.NoFileExists(t, filepath.Join(c.Dir, "noise.bin"))
			}
		})
	}
	for name, tt := range map[string]struct{ frag, want string }{
		"unknown branch": {"#nope", "name a branch or tag the repository has"},
		"not a SHA":      {"#refs/heads/main#1234", "is not a commit SHA"},
		"too many parts": {"#a#b#c", "want git://"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Fetch(context.Background(), "git://"+host+tt.frag, Options{Getenv: getenv, TempDir: t.TempDir()})
			require.ErrorContains(t, err, tt.want)
		})
	}
	t.Run("size limit", func(t *testing.T) {
		_, err := Fetch(context.Background(), "git://"+host+"#"+r.commits[0], Options{Getenv: getenv, TempDir: t.TempDir(), MaxSize: 1 << 20})
		require.ErrorIs(t, err, ErrTooLarge)
	})
}

// TestGitSmartHTTPS: kaniko's default, https, with the credentials kaniko
// reads; the clone is shallow (the 4 MiB blob of the first commit is never
// sent); no credential is left in the context.
func TestGitSmartHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs git http-backend; skipped in -short mode")
	}
	r := newGitRepo(t)
	const user, password, token = "ci", "CANARY-git-password", "CANARY-git-token-0123456789"
	host, ca, served := r.smartHTTPS(t, user, password, token)
	for name, getenv := range map[string]func(string) string{
		"GIT_USERNAME and GIT_PASSWORD": env("GIT_USERNAME", user, "GIT_PASSWORD", password, "GIT_SSL_CAINFO", ca),
		"GIT_TOKEN":                     env("GIT_TOKEN", token, "GIT_SSL_CAINFO", ca),
	} {
		t.Run(name, func(t *testing.T) {
			served.Store(0)
			c, err := Fetch(context.Background(), "git://"+host+"#refs/heads/main", Options{Getenv: getenv, TempDir: t.TempDir()})
			require.NoError(t, err)
			defer c.Close()
			require.Equal(t, "3", version(t, c))
			require.Less(t, served.Load(), int64(1<<20), "shallow: the old 4 MiB blob was not transferred")
			requireNoneContains(t, c.Dir, password, token)
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, err := Fetch(context.Background(), "git://"+host, Options{Getenv: env("GIT_USERNAME", user, "GIT_PASSWORD", "wrong", "GIT_SSL_CAINFO", ca), TempDir: t.TempDir()})
		require.ErrorContains(t, err, "set GIT_TOKEN, or GIT_USERNAME and GIT_PASSWORD")
		require.NotContains(t, err.Error(), "wrong")
	})
	t.Run("token in the URL", func(t *testing.T) {
		c, err := Fetch(context.Background(), "git://"+token+"@"+host, Options{Getenv: env("GIT_SSL_CAINFO", ca), TempDir: t.TempDir()})
		require.NoError(t, err)
		defer c.Close()
		requireNoneContains(t, c.Dir, token)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := Fetch(context.Background(), "git://"+host, Options{Getenv: env("GIT_TOKEN", token), TempDir: t.TempDir()})
		require.ErrorContains(t, err, "certificate")
	})
}

func requireNoneContains(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, s := range secrets {
			require.NotContains(t, string(b), s, p)
		}
		return nil
	}))
}
