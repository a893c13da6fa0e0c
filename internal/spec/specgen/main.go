// Command specgen writes every file generated from internal/spec: the GitHub
// action.yml files, the spec:inputs header and generated variables of the
// GitLab components, and the inputs/outputs tables of README.md and docs/.
//
//	go generate ./...            (runs specgen from internal/spec)
//	go run ./internal/spec/specgen -check   (lists stale files, exits 1)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/hoist-ci/hoist/internal/spec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "specgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("specgen", flag.ContinueOnError)
	root := flags.String("root", "", "repository root (default: the directory of `go env GOMOD`)")
	check := flags.Bool("check", false, "write nothing; fail listing the files that are stale")
	releaseTag := flags.String("release-tag", "", "write nothing; check that this git tag (v0.2.0) is the release spec.Version names, and print version=<x.y.z> and major=<vN> (for $GITHUB_OUTPUT)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *releaseTag != "" {
		v, err := spec.ReleaseVersion(*releaseTag)
		if err != nil {
			return err
		}
		if v != spec.Version {
			return fmt.Errorf("the tag %s is not the version this commit declares (internal/spec/version.go: Version = %q): set Version = %q, run go generate ./..., commit, and tag that commit", *releaseTag, spec.Version, v)
		}
		_, err = fmt.Fprintf(stdout, "version=%s\nmajor=%s\n", v, spec.MajorTag())
		return err
	}
	if *root == "" {
		var err error
		if *root, err = moduleRoot(ctx); err != nil {
			return err
		}
	}
	repo := os.DirFS(*root)
	files, err := spec.Render(repo)
	if err != nil {
		return fmt.Errorf("rendering from internal/spec: %w", err)
	}
	stale, err := spec.Stale(repo, files)
	if err != nil {
		return err
	}
	if *check {
		if len(stale) > 0 {
			return fmt.Errorf("stale generated files (run go generate ./...): %s", strings.Join(stale, ", "))
		}
		return nil
	}
	for _, name := range stale {
		dst := filepath.Join(*root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := os.WriteFile(dst, files[name], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		fmt.Fprintln(stdout, "specgen: wrote", name)
	}
	return nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the repository root with go env GOMOD (or pass -root): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the hoist module: run from the repository or pass -root")
	}
	return filepath.Dir(gomod), nil
}
