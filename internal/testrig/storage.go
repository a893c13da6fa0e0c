package testrig

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// AzuriteAccount and AzuriteKey are Azurite's well-known development
// account and key.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteServer is a running Azurite Blob service.
type AzuriteServer struct {
	// Endpoint is the blob service URL, path-style:
	// http://127.0.0.1:PORT/devstoreaccount1.
	Endpoint string
	log      *bytes.Buffer
}

// ConnectionString is the development account's connection string.
func (a *AzuriteServer) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", AzuriteAccount, AzuriteKey, a.Endpoint)
}

// Azurite starts Azurite's Blob service (npm azurite, installed by
// test/rig/install.sh) on a free loopback port, in memory, for the test.
func Azurite(t testing.TB) *AzuriteServer {
	t.Helper()
	bin := rigTool(t, "azurite-blob", "npm install azurite")
	port := freePortT(t)
	log := startDaemon(t, bin, port, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--inMemoryPersistence", "--silent", "--disableTelemetry",
		// Azurite 3.35 (the last for Node 20) refuses API versions newer
		// than its own: the tests do not depend on the SDK's.
		"--skipApiVersionCheck")
	return &AzuriteServer{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount), log: log}
}

// S3rverKey is the access key ID and secret s3rver accepts.
const S3rverKey = "S3RVER"

// S3rverServer is a running s3rver, an S3-protocol server (it checks
// SigV4 signatures).
type S3rverServer struct {
	// Endpoint is http://127.0.0.1:PORT (path-style bucket addressing).
	Endpoint string
}

// S3rver starts s3rver (npm s3rver, installed by test/rig/install.sh) on a
// free loopback port with the given buckets created.
func S3rver(t testing.TB, buckets ...string) *S3rverServer {
	t.Helper()
	bin := rigTool(t, "s3rver", "npm install s3rver")
	port := freePortT(t)
	args := []string{"-d", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(port), "--silent", "--no-vhost-buckets"}
	for _, b := range buckets {
		args = append(args, "--configure-bucket", b)
	}
	startDaemon(t, bin, port, args...)
	return &S3rverServer{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// rigTool finds a tool on PATH or in .cache/tools/bin; it fails the test
// (never skips) when the tool is missing.
func rigTool(t testing.TB, name, how string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, ".cache", "tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not installed: run test/rig/install.sh (%s into .cache/tools)", name, how)
	}
	return p
}

func freePortT(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startDaemon runs bin until the test ends and waits until port accepts
// connections.
func startDaemon(t testing.TB, bin string, port int, args ...string) *bytes.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 2 * time.Second
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", filepath.Base(bin), err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return &log
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on 127.0.0.1:%d within 30 s:\n%s", filepath.Base(bin), port, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
