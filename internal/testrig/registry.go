// Package testrig holds the helpers tests use to stand up the real test rig:
// Debian's CNCF distribution registry on a loopback port (with or without
// htpasswd auth), an in-process registry, a fault-injecting proxy, a request
// counter and random images. It is imported by _test.go files only.
package testrig

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the Debian package's registry command.
const RegistryBinary = "docker-registry"

const (
	startTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
	startTries   = 3
	logTailLines = 40
)

// RegistryOptions configure Registry.
type RegistryOptions struct {
	// Users turns on htpasswd (bcrypt) auth with these username → password
	// pairs. Empty means no auth.
	Users map[string]string
}

// Reg is a running docker-registry.
type Reg struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Users are the htpasswd users (username → password); empty without auth.
	Users map[string]string
	// Dir is the storage root; Log the registry's log file.
	Dir string
	Log string
}

// Auth returns basic credentials of the first user (sorted by name), or
// authn.Anonymous when the registry has no auth.
func (r *Reg) Auth() authn.Authenticator {
	if len(r.Users) == 0 {
		return authn.Anonymous
	}
	names := make([]string, 0, len(r.Users))
	for u := range r.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	return &authn.Basic{Username: names[0], Password: r.Users[names[0]]}
}

// RemoteOptions are the options to reach the registry directly (as Auth()).
func (r *Reg) RemoteOptions() []remote.Option {
	return []remote.Option{remote.WithAuth(r.Auth())}
}

// Registry starts Debian's `docker-registry serve` on a free 127.0.0.1 port
// with filesystem storage in a temporary directory and deletes enabled, and
// htpasswd auth when opts.Users is set. It waits until /v2/ answers and
// stops the registry when the test ends; on failure it prints the tail of
// the registry's log. A missing binary fails the test (skips it in -short).
func Registry(t testing.TB, opts RegistryOptions) *Reg {
	t.Helper()
	bin, err := exec.LookPath(RegistryBinary)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s is not installed (run `make test`, or apt-get install -y docker-registry); skipped in -short mode", RegistryBinary)
		}
		t.Fatalf("%s is not installed: run `make test` (it installs the rig) or apt-get install -y docker-registry", RegistryBinary)
	}
	dir := t.TempDir()
	reg := &Reg{Dir: filepath.Join(dir, "storage"), Log: filepath.Join(dir, "registry.log"), Users: map[string]string{}}
	htpasswd := ""
	if len(opts.Users) > 0 {
		htpasswd = filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(htpasswd, opts.Users); err != nil {
			t.Fatalf("writing htpasswd: %v", err)
		}
		for u, p := range opts.Users {
			reg.Users[u] = p
		}
	}
	logf, err := os.Create(reg.Log)
	if err != nil {
		t.Fatalf("creating the registry log: %v", err)
	}
	t.Cleanup(func() { logf.Close() })

	var lastErr error
	for try := 1; try <= startTries; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(registryConfig(host, reg.Dir, htpasswd)), 0o600); err != nil {
			t.Fatalf("writing the registry config: %v", err)
		}
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if lastErr = waitReady(host, exited); lastErr == nil {
			reg.Host = host
			t.Cleanup(func() {
				stop(cmd, exited)
				if t.Failed() {
					t.Logf("docker-registry log (%s), last lines:\n%s", reg.Log, tail(reg.Log, logTailLines))
				}
			})
			return reg
		}
		stop(cmd, exited)
	}
	t.Fatalf("docker-registry did not start after %d tries: %v\nlog (%s), last lines:\n%s", startTries, lastErr, reg.Log, tail(reg.Log, logTailLines))
	return nil
}

func registryConfig(addr, root, htpasswd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
`, root, addr, randomHex(16))
	if htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: hoist-testrig
    path: %q
`, htpasswd)
	}
	return b.String()
}

func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("invalid htpasswd user name %q", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// waitReady polls http://host/v2/ until it answers 200 or 401, the process
// exits, or startTimeout passes.
func waitReady(host string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("docker-registry exited: %v", err)
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer on http://%s/v2/ within %s", host, startTimeout)
}

func stop(cmd *exec.Cmd, exited <-chan error) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// InProcessRegistry serves go-containerregistry's registry on a loopback
// httptest server for the duration of the test and returns its host.
func InProcessRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
