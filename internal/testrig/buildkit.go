package testrig

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// BuildKit binaries: the daemon and its client, built by test/rig/install.sh
// from github.com/moby/buildkit at the version hoist imports its Dockerfile
// parser from (go.mod), so the oracle and hoist read Dockerfiles alike.
const (
	BuildKitDaemon = "buildkitd"
	BuildKitClient = "buildctl"
)

// BuildKit is a running buildkitd: Docker's builder (what `docker build`
// runs through buildx), with its OCI worker (runc) and host networking.
type BuildKit struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartBuildKit starts buildkitd as root with its state in a temporary
// directory, reading the given loopback registries over plain HTTP. It
// stops when the test ends; on failure the tail of its log is printed. A
// missing binary or a non-root user fails the test (skips it in -short).
func StartBuildKit(t testing.TB, insecureRegistries ...string) *BuildKit {
	t.Helper()
	if testing.Short() {
		t.Skip("needs BuildKit (buildkitd, run as root); skipped in -short mode")
	}
	for _, b := range []string{BuildKitDaemon, BuildKitClient, "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not installed: run `make test` or test/rig/install.sh (it builds buildkitd and buildctl from the module proxy, and installs runc)", b)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("BuildKit's daemon runs as root here (rootful runc worker): run the differential tests as root, as `make test` does in CI")
	}
	// A short directory: buildkitd's unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "hoist-bk-")
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "root = %q\n[grpc]\n  address = [\"unix://%s/buildkitd.sock\"]\n", filepath.Join(dir, "root"), dir)
	// host networking: the rig's engine has no bridge, and RUN apt-get needs
	// the network as hoist's RUN has it; gc off: the directory goes anyway.
	conf.WriteString("[worker.oci]\n  enabled = true\n  snapshotter = \"auto\"\n  networkMode = \"host\"\n  gc = false\n[worker.containerd]\n  enabled = false\n")
	for _, h := range insecureRegistries {
		fmt.Fprintf(&conf, "[registry.%q]\n  http = true\n  insecure = true\n", h)
	}
	cfg := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(cfg, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "buildkitd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(BuildKitDaemon, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	bk := &BuildKit{Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(bk.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-bk.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-bk.done
		}
		if t.Failed() {
			t.Logf("buildkitd log (%s), last lines:\n%s", logPath, tail(logPath, logTailLines))
		}
		_ = removeAll(dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(BuildKitClient, "--addr", bk.Addr, "debug", "workers").CombinedOutput()
		if err == nil {
			break
		}
		select {
		case <-bk.done:
			t.Fatalf("buildkitd exited while starting; log:\n%s", tail(logPath, logTailLines))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd did not answer within 30s: %v: %s\nlog:\n%s", err, out, tail(logPath, logTailLines))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return bk
}

// removeAll deletes a directory buildkitd used; its overlay snapshots may
// still be mounted for a moment after it exits.
func removeAll(dir string) error {
	var err error
	for range 10 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// BuildKitBuild is one `buildctl build` of a Dockerfile.
type BuildKitBuild struct {
	Context    string
	Dockerfile string // default <Context>/Dockerfile
	Args       map[string]string
	Target     string
	// Out is the directory the OCI image layout is written to.
	Out string
}

// Build builds with BuildKit's Dockerfile frontend (built in: no image is
// pulled for it) and returns the image, read from the OCI layout in b.Out,
// and buildctl's output (the build log).
func (bk *BuildKit) Build(ctx context.Context, b BuildKitBuild) (v1.Image, string, error) {
	file := b.Dockerfile
	if file == "" {
		file = filepath.Join(b.Context, "Dockerfile")
	}
	args := []string{"--addr", bk.Addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + b.Context, "--local", "dockerfile=" + filepath.Dir(file),
		"--opt", "filename=" + filepath.Base(file),
		"--output", "type=oci,tar=false,dest=" + b.Out}
	for _, k := range slices.Sorted(maps.Keys(b.Args)) {
		args = append(args, "--opt", "build-arg:"+k+"="+b.Args[k])
	}
	if b.Target != "" {
		args = append(args, "--opt", "target="+b.Target)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, BuildKitClient, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, out.String(), fmt.Errorf("buildctl build: %w", err)
	}
	p, err := layout.FromPath(b.Out)
	if err != nil {
		return nil, out.String(), fmt.Errorf("reading BuildKit's OCI layout: %w", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, out.String(), err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, out.String(), err
	}
	if len(m.Manifests) != 1 {
		return nil, out.String(), fmt.Errorf("BuildKit's OCI layout holds %d manifests, want 1", len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	return img, out.String(), err
}
