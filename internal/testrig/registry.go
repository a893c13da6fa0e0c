// Package testrig holds the helpers tests use to stand up the real test rig:
// Debian's CNCF distribution registry on a loopback port (with or without
// htpasswd auth), an in-process registry, a fault-injecting proxy, a request
// counter and random images. Tests use the testing.TB helpers (Registry);
// programs such as the benchmarks under bench/ use StartRegistry and Classify.
package testrig

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	"sync"
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

// RegistryOptions configure Registry and StartRegistry.
type RegistryOptions struct {
	// Users turns on htpasswd (bcrypt) auth with these username → password
	// pairs. Empty means no auth.
	Users map[string]string
	// HtpasswdCost is the bcrypt cost of the Users' hashes (0:
	// bcrypt.MinCost). The registry checks the hash on every request.
	HtpasswdCost int
	// AuthConfig is the body of the config's `auth:` section, as YAML
	// starting at column 0 (e.g. "token:\n  realm: …\n"), for set-ups Users
	// does not cover. Mutually exclusive with Users.
	AuthConfig string
	// Quiet logs errors only, without the access log: for benchmarks, where
	// logging every request costs time.
	Quiet bool
	// Binary is the registry command (default: RegistryBinary on PATH).
	Binary string
}

func (o RegistryOptions) validate() error {
	if len(o.Users) > 0 && strings.TrimSpace(o.AuthConfig) != "" {
		return errors.New("RegistryOptions: Users and AuthConfig both configure auth: set one of them")
	}
	if strings.HasPrefix(strings.TrimSpace(o.AuthConfig), "auth:") {
		return errors.New("RegistryOptions.AuthConfig is the body of the auth: section: leave out the `auth:` line")
	}
	if o.HtpasswdCost != 0 {
		if len(o.Users) == 0 {
			return errors.New("RegistryOptions.HtpasswdCost is set without Users")
		}
		if o.HtpasswdCost < bcrypt.MinCost || o.HtpasswdCost > bcrypt.MaxCost {
			return fmt.Errorf("RegistryOptions.HtpasswdCost %d: want %d to %d", o.HtpasswdCost, bcrypt.MinCost, bcrypt.MaxCost)
		}
	}
	return nil
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

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // the process's exit, set before done is closed
	stopOnce sync.Once
	bin      string // the registry command
	config   string // its config file
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
// htpasswd auth when opts.Users is set (see StartRegistry). It stops the
// registry when the test ends; on failure it prints the tail of the
// registry's log. A missing binary fails the test (skips it in -short).
func Registry(t testing.TB, opts RegistryOptions) *Reg {
	t.Helper()
	if opts.Binary == "" {
		if _, err := exec.LookPath(RegistryBinary); err != nil {
			if testing.Short() {
				t.Skipf("%s is not installed (run `make test`, or apt-get install -y docker-registry); skipped in -short mode", RegistryBinary)
			}
			t.Fatalf("%s is not installed: run `make test` (it installs the rig) or apt-get install -y docker-registry", RegistryBinary)
		}
	}
	reg, err := StartRegistry(t.Context(), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		reg.Stop()
		if t.Failed() {
			t.Logf("docker-registry log (%s), last lines:\n%s", reg.Log, reg.LogTail(logTailLines))
		}
	})
	return reg
}

// StartRegistry starts `docker-registry serve` (opts.Binary) on a free
// 127.0.0.1 port, with its config, log (registry.log) and filesystem storage
// (storage/, deletes enabled) in dir, which it owns, and without the
// REGISTRY_* variables of the environment (they would override the config).
// It waits until /v2/ answers 200 or 401, trying up to three ports (another
// process may take a free port before the registry binds it). ctx bounds the
// start only; Stop ends the registry.
func StartRegistry(ctx context.Context, dir string, opts RegistryOptions) (*Reg, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	bin := opts.Binary
	if bin == "" {
		p, err := exec.LookPath(RegistryBinary)
		if err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install -y docker-registry): %w", RegistryBinary, err)
		}
		bin = p
	}
	reg := &Reg{Dir: filepath.Join(dir, "storage"), Log: filepath.Join(dir, "registry.log"), Users: map[string]string{}}
	auth := ""
	if len(opts.Users) > 0 {
		htpasswd := filepath.Join(dir, "htpasswd")
		cost := opts.HtpasswdCost
		if cost == 0 {
			cost = bcrypt.MinCost
		}
		if err := writeHtpasswd(htpasswd, opts.Users, cost); err != nil {
			return nil, fmt.Errorf("writing htpasswd: %w", err)
		}
		for u, p := range opts.Users {
			reg.Users[u] = p
		}
		auth = fmt.Sprintf("htpasswd:\n  realm: hoist-testrig\n  path: %q\n", htpasswd)
	} else if strings.TrimSpace(opts.AuthConfig) != "" {
		auth = opts.AuthConfig
	}
	logf, err := os.Create(reg.Log)
	if err != nil {
		return nil, fmt.Errorf("creating the registry log: %w", err)
	}
	defer logf.Close() // the registry writes to its own copy

	var lastErr error
	tries := 0
	for tries < startTries && ctx.Err() == nil {
		tries++
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(registryConfig(host, reg.Dir, auth, opts.Quiet)), 0o600); err != nil {
			return nil, fmt.Errorf("writing the registry config: %w", err)
		}
		reg.bin, reg.config = bin, cfg
		if err := reg.launch(logf); err != nil {
			return nil, err
		}
		if lastErr = reg.waitReady(ctx, host); lastErr == nil {
			reg.Host = host
			return reg, nil
		}
		reg.stop()
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, fmt.Errorf("docker-registry did not start after %d tries: %w\nlog (%s), last lines:\n%s", tries, lastErr, reg.Log, tail(reg.Log, logTailLines))
}

// launch starts the registry process with its config, logging to logf.
func (r *Reg) launch(logf *os.File) error {
	cmd := exec.Command(r.bin, "serve", r.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = withoutPrefix(os.Environ(), "REGISTRY_")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", r.bin, err)
	}
	done := make(chan struct{})
	r.cmd, r.done, r.waitErr = cmd, done, nil
	go func() {
		r.waitErr = cmd.Wait()
		close(done)
	}()
	return nil
}

// Kill ends the registry at once (SIGKILL), as a crash would: uploads in
// flight are cut, connections refused until Restart.
func (r *Reg) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// Restart starts the registry again after Kill, on the same address, with
// the same storage and config.
func (r *Reg) Restart(ctx context.Context) error {
	select {
	case <-r.done:
	default:
		return errors.New("restarting docker-registry: it is still running (Kill it first)")
	}
	logf, err := os.OpenFile(r.Log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening the registry log: %w", err)
	}
	defer logf.Close()
	if err := r.launch(logf); err != nil {
		return err
	}
	if err := r.waitReady(ctx, r.Host); err != nil {
		r.stop()
		return fmt.Errorf("restarting docker-registry on %s: %w\nlog (%s), last lines:\n%s", r.Host, err, r.Log, tail(r.Log, logTailLines))
	}
	return nil
}

// Stop ends the registry: SIGTERM, then SIGKILL after 5 s. It may be called
// more than once.
func (r *Reg) Stop() {
	r.stopOnce.Do(r.stop)
}

// LogTail returns the last n lines of the registry's log.
func (r *Reg) LogTail(n int) string { return tail(r.Log, n) }

func (r *Reg) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// waitReady polls http://host/v2/ until it answers 200 or 401, the process
// exits, ctx ends or startTimeout passes.
func (r *Reg) waitReady(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited: %v", r.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("no answer on http://%s/v2/ within %s: %w", host, startTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// registryConfig is the registry's config; auth is the body of its auth:
// section ("" for none).
func registryConfig(addr, root, auth string, quiet bool) string {
	var b strings.Builder
	level, accessLog := "info", ""
	if quiet {
		level, accessLog = "error", "  accesslog:\n    disabled: true\n"
	}
	fmt.Fprintf(&b, `version: 0.1
log:
  level: %s
  formatter: text
%sstorage:
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
`, level, accessLog, root, addr, randomHex(16))
	if auth != "" {
		b.WriteString("auth:\n")
		for _, line := range strings.SplitAfter(strings.TrimRight(auth, "\n")+"\n", "\n") {
			if strings.TrimSpace(line) != "" {
				b.WriteString("  ")
			}
			b.WriteString(line)
		}
	}
	return b.String()
}

func writeHtpasswd(path string, users map[string]string, cost int) error {
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
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), cost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// withoutPrefix drops the KEY=value entries whose key starts with prefix.
func withoutPrefix(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
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
