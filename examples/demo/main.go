// Command demo runs the example release pipeline end to end on an embedded
// registry (go-containerregistry's pkg/registry, in this process): a build
// job's image is given its release tags on a GitHub tag pipeline, a backport
// is released from a GitLab tag pipeline without moving latest, and the
// release is promoted to a production repository from the CLI. It runs the
// real retag binary; no Docker, no network beyond loopback.
//
//	go run ./examples/demo -retag bin/retag
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	retagBin := flag.String("retag", "bin/retag", "path to the retag binary")
	flag.Parse()
	if err := run(context.Background(), *retagBin, os.Stdout); err != nil {
		log.Fatalf("demo: %v", err)
	}
}

// A release commit and a backport commit of the sample app.
const (
	releaseSHA  = "3f9c2e17a0b4c5d6e7f8091a2b3c4d5e6f708192"
	backportSHA = "9b1d44e0c2a3b4c5d6e7f8091a2b3c4d5e6f7081"
)

func run(ctx context.Context, retagBin string, out io.Writer) error {
	if _, err := os.Stat(retagBin); err != nil {
		return fmt.Errorf("retag binary %s: %w (run `make build` first)", retagBin, err)
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	repo := host + "/team/app"
	work, err := os.MkdirTemp("", "hoist-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step := func(title string) { fmt.Fprintf(out, "\n== %s\n", title) }

	step("build job: the image of each commit is pushed as <image>:<short sha>")
	for _, c := range []struct{ sha, text string }{{releaseSHA, "release 1.4.2"}, {backportSHA, "backport 1.3.9"}} {
		ref := repo + ":" + c.sha[:7]
		if c.sha == backportSHA {
			ref = repo + ":" + c.sha[:8] // GitLab's short SHA has 8 characters
		}
		d, err := pushSample(ctx, ref, c.text)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s  %s\n", ref, d)
	}

	step("GitHub tag pipeline, refs/tags/v1.4.2: retag with no inputs but the image")
	ghOut := filepath.Join(work, "github_output")
	if err := retag(ctx, out, retagBin, nil, map[string]string{
		"GITHUB_ACTIONS":            "true",
		"GITHUB_EVENT_NAME":         "push",
		"GITHUB_REF":                "refs/tags/v1.4.2",
		"GITHUB_REF_NAME":           "v1.4.2",
		"GITHUB_REF_TYPE":           "tag",
		"GITHUB_SHA":                releaseSHA,
		"GITHUB_REPOSITORY":         "hoist-ci/demo-app",
		"GITHUB_WORKSPACE":          work,
		"GITHUB_OUTPUT":             ghOut,
		"INPUT_IMAGE":               repo,
		"INPUT_INSECURE-REGISTRIES": host,
		"INPUT_SEMVER-ALIASES":      "true",
		"INPUT_LATEST":              "auto",
	}); err != nil {
		return err
	}
	if b, err := os.ReadFile(ghOut); err == nil {
		fmt.Fprintf(out, "-- $GITHUB_OUTPUT --\n%s", b)
	}

	step("GitLab tag pipeline, CI_COMMIT_TAG=v1.3.9 (a backport): latest stays on 1.4.2")
	if err := retag(ctx, out, retagBin, nil, map[string]string{
		"GITLAB_CI":                 "true",
		"CI_PIPELINE_SOURCE":        "push",
		"CI_COMMIT_TAG":             "v1.3.9",
		"CI_COMMIT_REF_NAME":        "v1.3.9",
		"CI_COMMIT_SHA":             backportSHA,
		"CI_PROJECT_DIR":            work,
		"CI_REGISTRY_IMAGE":         repo,
		"INPUT_INSECURE_REGISTRIES": host,
	}); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(work, "retag.env")); err == nil {
		fmt.Fprintf(out, "-- dotenv report retag.env --\n%s", b)
	}

	step("CLI: dry run of a promotion to the production repository")
	prod := host + "/prod/app"
	args := []string{"--source", repo + ":1.4.2", "--destination", prod, "--tags", "1.4.2", "--semver-aliases", "false", "--insecure-registries", host}
	if err := retag(ctx, out, retagBin, append(args, "--dry-run", "true"), nil); err != nil {
		return err
	}
	step("CLI: the promotion itself (blobs mounted across repositories, digest unchanged)")
	if err := retag(ctx, out, retagBin, args, nil); err != nil {
		return err
	}

	step("the registry afterwards")
	for _, r := range []string{repo, prod} {
		if err := listTags(ctx, out, r); err != nil {
			return err
		}
	}
	return checkRelease(ctx, repo, prod)
}

// retag runs the real binary with a clean environment plus env.
func retag(ctx context.Context, out io.Writer, bin string, args []string, env map[string]string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// GitHub hides ::debug:: lines unless step debugging is on; so does the demo.
	w := &dropDebug{out: out}
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(out, "$ retag %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("retag %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// pushSample pushes a one-layer image whose file says text.
func pushSample(ctx context.Context, ref, text string) (v1.Hash, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(text + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "app/VERSION", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		return v1.Hash{}, err
	}
	if _, err := tw.Write(body); err != nil {
		return v1.Hash{}, err
	}
	if err := tw.Close(); err != nil {
		return v1.Hash{}, err
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return v1.Hash{}, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	return img.Digest()
}

func listTags(ctx context.Context, out io.Writer, repo string) error {
	r, err := name.NewRepository(repo)
	if err != nil {
		return err
	}
	tags, err := remote.List(r, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("listing %s: %w", repo, err)
	}
	sort.Strings(tags)
	for _, t := range tags {
		d, err := remote.Head(r.Tag(t), remote.WithContext(ctx))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-40s %s\n", r.Tag(t).String(), d.Digest)
	}
	return nil
}

// checkRelease verifies what the demo promises, so `make demo` fails loudly
// if retag misbehaves.
func checkRelease(ctx context.Context, repo, prod string) error {
	digest := func(ref string) (string, error) {
		r, err := name.ParseReference(ref)
		if err != nil {
			return "", err
		}
		d, err := remote.Head(r, remote.WithContext(ctx))
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, err)
		}
		return d.Digest.String(), nil
	}
	want, err := digest(repo + ":" + releaseSHA[:7])
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range []string{repo + ":v1.4.2", repo + ":1.4.2", repo + ":1.4", repo + ":1", repo + ":latest", prod + ":1.4.2"} {
		got, err := digest(ref)
		if err != nil || got != want {
			errs = append(errs, fmt.Errorf("%s: got %s (%v), want %s", ref, got, err, want))
		}
	}
	if got, _ := digest(repo + ":1.3"); got == want || got == "" {
		errs = append(errs, fmt.Errorf("%s:1.3 should hold the backport", repo))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Println("\ndemo OK: release tags, latest=auto on a backport, and a promotion all point at the right digests")
	return nil
}

// dropDebug passes through every line but GitHub's ::debug:: ones.
type dropDebug struct {
	out     io.Writer
	partial []byte
}

func (d *dropDebug) Write(p []byte) (int, error) {
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := d.partial[:i+1]
		if !bytes.HasPrefix(line, []byte("::debug::")) {
			if _, err := d.out.Write(line); err != nil {
				return 0, err
			}
		}
		d.partial = d.partial[i+1:]
	}
}
