package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hoist-ci/hoist/internal/spec"
)

// wantCraneVersion is the peer the results are quoted against.
const wantCraneVersion = "v0.22.1"

// tools are the binaries under test and their versions.
type tools struct {
	retag           string
	crane           string
	registry        string
	hoistVersion    string
	craneVersion    string
	registryVersion string
}

func findTools(ctx context.Context, cfg config) (tools, error) {
	var t tools
	var err error
	if t.retag, err = findRetag(cfg); err != nil {
		return t, err
	}
	if t.crane, err = findCrane(cfg); err != nil {
		return t, err
	}
	if t.registry, err = findRegistry(cfg); err != nil {
		return t, err
	}
	if t.craneVersion, err = output(ctx, cfg.root, t.crane, "version"); err != nil {
		return t, fmt.Errorf("asking crane for its version: %w", err)
	}
	v, err := output(ctx, cfg.root, t.registry, "--version")
	if err != nil {
		return t, fmt.Errorf("asking docker-registry for its version: %w", err)
	}
	t.registryVersion = "docker-registry " + lastField(v)
	t.hoistVersion = hoistVersion(ctx, cfg.root, t.retag)
	return t, nil
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return s
	}
	return f[len(f)-1]
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func findRetag(cfg config) (string, error) {
	path := cfg.retagBin
	if path == "" {
		path = filepath.Join(cfg.root, "bin", "retag")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolving --retag %s: %w", path, err)
	}
	if !isExecutable(abs) {
		return "", fmt.Errorf("hoist's retag binary %s is missing or not executable: build it with `make build` (or `go build -o bin/retag ./actions/retag`), or pass --retag PATH", abs)
	}
	return abs, nil
}

func findCrane(cfg config) (string, error) {
	if cfg.craneBin != "" {
		if !isExecutable(cfg.craneBin) {
			return "", fmt.Errorf("--crane %s is missing or not executable: install crane with `go install github.com/google/go-containerregistry/cmd/crane@%s`", cfg.craneBin, wantCraneVersion)
		}
		return filepath.Abs(cfg.craneBin)
	}
	if p, err := exec.LookPath("crane"); err == nil {
		return filepath.Abs(p)
	}
	candidates := []string{filepath.Join(cfg.root, ".cache", "tools", "bin", "crane")}
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "crane"))
	}
	for _, gp := range filepath.SplitList(os.Getenv("GOPATH")) {
		if gp != "" {
			candidates = append(candidates, filepath.Join(gp, "bin", "crane"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "crane"))
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("crane not found on PATH nor in %s: install it with `go install github.com/google/go-containerregistry/cmd/crane@%s`, or pass --crane PATH",
		strings.Join(candidates, ", "), wantCraneVersion)
}

func findRegistry(cfg config) (string, error) {
	if cfg.registryBin != "" {
		if !isExecutable(cfg.registryBin) {
			return "", fmt.Errorf("--registry %s is missing or not executable: install it with `apt-get install -y docker-registry`", cfg.registryBin)
		}
		return filepath.Abs(cfg.registryBin)
	}
	p, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", fmt.Errorf("docker-registry not found on PATH: install it with `apt-get install -y docker-registry` (Debian's CNCF distribution), or pass --registry PATH")
	}
	return p, nil
}

// hoistVersion names what was measured: spec.Version, the commit, whether the
// binary's sources differ from it (+dirty, untracked files included), the binary, and whether it is older than the Go sources
// it is built from (a stale bin/retag would measure old code).
func hoistVersion(ctx context.Context, root, bin string) string {
	v := spec.Version
	if head, err := output(ctx, root, "git", "rev-parse", "--short", "HEAD"); err == nil {
		if st, err := output(ctx, root, "git", "status", "--porcelain", "--", "actions", "components", "internal", "go.mod", "go.sum"); err == nil && st != "" {
			head += "+dirty"
		}
		v += " (" + head + ")"
	}
	rel, err := filepath.Rel(root, bin)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = bin
	}
	v += ", " + rel
	if newerSourceThan(root, bin) {
		v += " (older than its sources: run `make build`)"
	}
	return v
}

// newerSourceThan reports whether a .go file of the binary's packages
// (actions/, components/, internal/) was modified after bin.
func newerSourceThan(root, bin string) bool {
	fi, err := os.Stat(bin)
	if err != nil {
		return false
	}
	built := fi.ModTime()
	newer := false
	for _, dir := range []string{"actions", "components", "internal"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // an unreadable or missing directory says nothing about staleness
			}
			if newer {
				return fs.SkipAll
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(built) {
				newer = true
			}
			return nil
		})
	}
	return newer
}
