package buildpush

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/kaniko"
	"github.com/hoist-ci/hoist/internal/spec"
)

// ExecutorMain is build-push run as kaniko's /kaniko/executor: kaniko's
// flags are translated (internal/kaniko), the flags without effect are
// named in a note each, and the build runs as build-push's. Credentials in
// /kaniko/.docker/config.json are read as kaniko reads them. It returns
// the exit code.
func ExecutorMain() int {
	if code, done := Prepare(); done {
		return code
	}
	t, err := kaniko.Translate(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "executor: error:", err)
		return ci.ExitUsage
	}
	if t.Version {
		fmt.Println("hoist build-push " + spec.BinaryVersion() + " (kaniko executor flags)")
		return ci.ExitOK
	}
	if t.Help {
		fmt.Println("/kaniko/executor is hoist's build-push with kaniko's flags: see docs/kaniko-migration.md; build-push's own flags follow.")
		t.Args = []string{"--help"}
	}
	for _, n := range t.Notes {
		fmt.Fprintln(os.Stderr, "executor: note: "+n)
	}
	_, err = os.Stat(kanikoCertDir)
	if dirs := certDirs(os.Getenv("SSL_CERT_DIR"), err == nil, t.CertificateDirs); dirs != "" {
		_ = os.Setenv("SSL_CERT_DIR", dirs)
	}
	env := ci.OSEnv()
	env.Args = t.Args
	if t.Debug {
		getenv := env.Getenv
		env.Getenv = func(k string) string {
			if k == "HOIST_DEBUG" {
				return "true"
			}
			return getenv(k)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ci.Main(ctx, spec.BuildPush(), env, runWritingTagDigests(t.ImageNameTagWithDigestFile))
}

// kanikoCertDir is where kaniko's image keeps its CA certificates (its
// SSL_CERT_DIR). GitLab's documentation has a job trust a private CA by
// appending it there: >> /kaniko/ssl/certs/additional-ca-cert-bundle.crt
// (or to its ca-certificates.crt, in hoist's image a link to the system
// bundle).
const kanikoCertDir = "/kaniko/ssl/certs"

// systemCertDir is the image's certificate directory, which Go reads when
// SSL_CERT_DIR is unset.
const systemCertDir = "/etc/ssl/certs"

// certDirs is SSL_CERT_DIR for the executor: the directories the process
// has (SSL_CERT_DIR, else the system's and, where it exists, kaniko's),
// then the directories of --registry-certificate files; "" to leave it
// as it is.
func certDirs(current string, kanikoDir bool, extra []string) string {
	if current == "" && !kanikoDir && len(extra) == 0 {
		return ""
	}
	dirs := []string{current}
	if current == "" {
		dirs = []string{systemCertDir}
		if kanikoDir {
			dirs = append(dirs, kanikoCertDir)
		}
	}
	return strings.Join(append(dirs, extra...), ":")
}

// runWritingTagDigests is Run that also writes kaniko's
// --image-name-tag-with-digest-file: `repo:tag@sha256:…` for every pushed
// reference, one per line.
func runWritingTagDigests(path string) ci.RunFunc {
	if path == "" {
		return Run
	}
	return func(ctx context.Context, j *ci.Job) (map[string]string, error) {
		out, err := Run(ctx, j)
		if err != nil || out["digest"] == "" {
			return out, err
		}
		var b strings.Builder
		for _, ref := range strings.Split(out["tags"], ",") {
			if ref = strings.TrimSpace(ref); ref != "" {
				b.WriteString(ref + "@" + out["digest"] + "\n")
			}
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return out, fmt.Errorf("writing --image-name-tag-with-digest-file %s: %w", path, err)
			}
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return out, fmt.Errorf("writing --image-name-tag-with-digest-file %s: %w", path, err)
		}
		return out, nil
	}
}
