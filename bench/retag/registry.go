package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// registryProc is one `docker-registry serve` process on a loopback port.
type registryProc struct {
	host string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	log  *lockedBuffer
}

// lockedBuffer collects a child's output; the child writes while we may read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 { // keep the head: the start-up error is there
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("releasing loopback port %d: %w", port, err)
	}
	return port, nil
}

// startRegistry runs bin (Debian's docker-registry, CNCF distribution) with
// filesystem storage under dir. auth is the config's `auth:` block ("" for
// none).
func startRegistry(ctx context.Context, bin, dir, auth string) (*registryProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken between Close and bind
		r, err := startRegistryOnce(ctx, bin, dir, auth)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startRegistryOnce(ctx context.Context, bin, dir, auth string) (*registryProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := "127.0.0.1:" + strconv.Itoa(port)
	storage := filepath.Join(dir, "storage-"+strconv.Itoa(port))
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("creating registry storage %s: %w", storage, err)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, storage, host, auth)
	configPath := filepath.Join(dir, "config-"+strconv.Itoa(port)+".yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("writing registry config %s: %w", configPath, err)
	}

	r := &registryProc{host: host, done: make(chan struct{}), log: &lockedBuffer{}}
	r.cmd = exec.Command(bin, "serve", configPath)
	r.cmd.Stdout = r.log
	r.cmd.Stderr = r.log
	r.cmd.Env = withoutPrefix(os.Environ(), "REGISTRY_") // REGISTRY_* would override the config
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve %s: %w", bin, configPath, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	if err := r.waitReady(ctx, 15*time.Second); err != nil {
		r.stop()
		return nil, fmt.Errorf("registry %s (%s serve %s): %w\n%s", host, bin, configPath, err, r.log.String())
	}
	return r, nil
}

// waitReady polls /v2/ until the registry answers (200, or 401 with auth).
func (r *registryProc) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.host+"/v2/", nil)
		if err != nil {
			return fmt.Errorf("building the readiness request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("exited before answering /v2/: %v", r.err)
		case <-ctx.Done():
			return fmt.Errorf("no answer on /v2/ within %s: %w", limit, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop ends the registry: SIGTERM, then SIGKILL after 5 s.
func (r *registryProc) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = r.cmd.Process.Kill()
	}
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}
