// Command demo runs the example delivery pipeline end to end on an embedded
// registry (go-containerregistry's pkg/registry, in this process), with the
// real binaries: gate passes the tests, build-push builds examples/app
// without a Docker daemon for a release commit (GitHub, with the app-token
// secret) and a backport commit (GitLab) — the app's RUN runs in
// build-push's sandbox on a busybox base made from the host's static
// busybox (Debian's busybox-static) — retag gives them their release tags
// on tag pipelines (latest and 1 never move backwards) and promotes the
// release to a production repository, and bump writes the release's digest
// into a GitOps repository (examples/gitops) and pushes the commit; then
// deliver's GitLab pipelines run on examples/deliver (deliver.go). No
// Docker, no network beyond loopback; besides the binaries it runs git, and
// busybox inside the RUN's sandbox (isolation auto: namespaces as root or
// where user namespaces are permitted, else a chroot, which needs root).
//
//	go run ./examples/demo -bin bin
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
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-ci/hoist/internal/testrig"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the gate, build-push, retag and bump binaries (make build)")
	flag.Parse()
	if err := run(context.Background(), *bin, os.Stdout); err != nil {
		log.Fatalf("demo: %v", err)
	}
}

// A release commit and a backport commit of the sample app.
const (
	releaseSHA  = "3f9c2e17a0b4c5d6e7f8091a2b3c4d5e6f708192"
	backportSHA = "9b1d44e0c2a3b4c5d6e7f8091a2b3c4d5e6f7081"
	// demoToken is the app-token secret of the release build: it must be
	// in no layer and in no output.
	demoToken = "demo-app-token-7d41e9"
)

func run(ctx context.Context, bin string, w io.Writer) error {
	// Everything printed is kept, to check that no secret was.
	var printed bytes.Buffer
	out := io.MultiWriter(w, &printed)
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	for _, tool := range []string{"gate", "build-push", "retag", "bump"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return fmt.Errorf("%s: %w (run `make build` first)", tool, err)
		}
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("the GitOps step needs git: %w", err)
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	repo := host + "/acme/web"
	work, err := os.MkdirTemp("", "hoist-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	app, err := filepath.Abs(filepath.Join("examples", "app"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(app, "Dockerfile")); err != nil {
		return fmt.Errorf("run the demo from the repository root: %w", err)
	}
	tool := func(name string, args []string, env map[string]string) error {
		return runTool(ctx, out, filepath.Join(bin, name), work, args, env)
	}
	step := func(title string) { fmt.Fprintf(out, "\n== %s\n", title) }

	step("test job: gate reads the test report and enforces its thresholds")
	if err := writeJUnit(filepath.Join(work, "reports", "unit.xml")); err != nil {
		return err
	}
	if err := tool("gate", []string{"--junit", filepath.Join(work, "reports", "*.xml"), "--min-tests", "3", "--max-failures", "0"}, nil); err != nil {
		return err
	}

	base := host + "/library/busybox:1.36"
	if err := pushBusybox(ctx, base); err != nil {
		return err
	}
	event := filepath.Join(work, "event.json")
	if err := os.WriteFile(event, []byte(`{"repository":{"default_branch":"main"}}`), 0o644); err != nil {
		return err
	}
	step("build job, GitHub push to main: build-push builds examples/app (no daemon; the RUN in a sandbox, with the app-token secret)")
	if err := tool("build-push", nil, map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": event,
		"GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch",
		"GITHUB_SHA": releaseSHA, "GITHUB_REPOSITORY": "acme/web", "GITHUB_WORKSPACE": work,
		"GITHUB_OUTPUT": filepath.Join(work, "build_output"),
		"INPUT_CONTEXT": app, "INPUT_IMAGE": repo, "INPUT_BUILD-ARGS": "BASE=" + base,
		"INPUT_INSECURE-REGISTRIES": host, "SOURCE_DATE_EPOCH": "1700000000",
		"INPUT_SECRETS": "app-token=env:APP_TOKEN", "APP_TOKEN": demoToken,
	}); err != nil {
		return err
	}
	step("build job, GitLab pipeline on branch release-1.3: the backport commit's image")
	if err := tool("build-push", nil, map[string]string{
		"GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "release-1.3",
		"CI_COMMIT_REF_NAME": "release-1.3", "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_SHA": backportSHA,
		"CI_PROJECT_DIR": work, "CI_REGISTRY_IMAGE": repo,
		"INPUT_CONTEXT": app, "INPUT_BUILD_ARGS": "BASE=" + base,
		"INPUT_INSECURE_REGISTRIES": host, "SOURCE_DATE_EPOCH": "1700000000",
	}); err != nil {
		return err
	}

	step("release job, GitHub tag pipeline refs/tags/v1.4.2: retag with no inputs but the image")
	ghOut := filepath.Join(work, "github_output")
	if err := tool("retag", nil, map[string]string{
		"GITHUB_ACTIONS":            "true",
		"GITHUB_EVENT_NAME":         "push",
		"GITHUB_REF":                "refs/tags/v1.4.2",
		"GITHUB_REF_NAME":           "v1.4.2",
		"GITHUB_REF_TYPE":           "tag",
		"GITHUB_SHA":                releaseSHA,
		"GITHUB_REPOSITORY":         "acme/web",
		"GITHUB_WORKSPACE":          work,
		"GITHUB_OUTPUT":             ghOut,
		"INPUT_IMAGE":               repo,
		"INPUT_INSECURE-REGISTRIES": host,
	}); err != nil {
		return err
	}
	if b, err := os.ReadFile(ghOut); err == nil {
		fmt.Fprintf(out, "-- $GITHUB_OUTPUT --\n%s", b)
	}

	step("release job, GitLab tag pipeline CI_COMMIT_TAG=v1.3.9 (a backport): 1.3 moves, 1 and latest stay on 1.4.2")
	if err := tool("retag", nil, map[string]string{
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
	prod := host + "/prod/acme/web"
	args := []string{"--source", repo + ":1.4.2", "--destination", prod, "--tags", "1.4.2", "--semver-aliases", "false", "--insecure-registries", host}
	if err := tool("retag", append(args, "--dry-run", "true"), nil); err != nil {
		return err
	}
	step("CLI: the promotion itself (blobs copied only where missing, digest unchanged)")
	if err := tool("retag", args, nil); err != nil {
		return err
	}
	release, err := digestOf(ctx, prod+":1.4.2")
	if err != nil {
		return err
	}

	step("deploy job: bump writes the release's digest into the GitOps repository and pushes the commit")
	gitops, err := seedGitOps(ctx, work)
	if err != nil {
		return err
	}
	if err := tool("bump", []string{
		"--repository", gitops, "--branch", "main",
		"--images", "registry.example.com/acme/web=registry.example.com/acme/web:1.4.2@" + release,
		"--author", "hoist demo <demo@hoist.invalid>",
	}, nil); err != nil {
		return err
	}
	show, err := git(ctx, "", "--git-dir", gitops, "show", "--stat", "--patch", "--format=commit %h %s%n", "main")
	if err != nil {
		return err
	}
	fmt.Fprint(out, show)

	step("the registry afterwards")
	for _, r := range []string{repo, prod} {
		if err := listTags(ctx, out, r); err != nil {
			return err
		}
	}
	step("deliver: examples/deliver (images api and web) through the pipelines of templates/deliver.yml, each job a real binary as GitLab runs it")
	// The jobs' own output is kept (for the secret check) and shown only on failure.
	var jobs bytes.Buffer
	if err := runDeliver(ctx, out, &jobs, bin, work, host, base); err != nil {
		fmt.Fprintf(out, "-- the deliver jobs' output --\n%s", jobs.String())
		return fmt.Errorf("deliver: %w", err)
	}
	printed.Write(jobs.Bytes())
	return checkPipeline(ctx, out, &printed, repo, prod, gitops, release)
}

// runTool runs a real binary in dir with a clean environment plus env.
func runTool(ctx context.Context, out io.Writer, bin, dir string, args []string, env map[string]string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// GitHub hides ::debug:: lines unless step debugging is on, and never
	// shows the ::add-mask:: commands it obeys; neither does the demo.
	w := &dropDebug{out: out}
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(out, "$ %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return nil
}

// pushBusybox pushes the base examples/app builds on: the host's static
// busybox with its applet links (testrig.BusyboxImage, the rig's base).
func pushBusybox(ctx context.Context, ref string) error {
	img, err := testrig.BusyboxImage()
	if err != nil {
		return fmt.Errorf("making the busybox base: %w", err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
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

func digestOf(ctx context.Context, ref string) (string, error) {
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

// writeJUnit writes the test job's report: three passing tests.
func writeJUnit(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(`<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="web" tests="3" failures="0" errors="0" skipped="0" time="0.042">
    <testcase classname="web.handlers" name="TestIndex" time="0.011"/>
    <testcase classname="web.handlers" name="TestHealth" time="0.004"/>
    <testcase classname="web.static" name="TestAssetsEmbedded" time="0.027"/>
  </testsuite>
</testsuites>
`), 0o644)
}

// seedGitOps makes a bare GitOps repository holding examples/gitops on
// branch main and returns its path.
func seedGitOps(ctx context.Context, work string) (string, error) {
	src, err := filepath.Abs(filepath.Join("examples", "gitops"))
	if err != nil {
		return "", err
	}
	bare := filepath.Join(work, "gitops.git")
	seed := filepath.Join(work, "gitops-seed")
	if err := os.CopyFS(seed, os.DirFS(src)); err != nil {
		return "", fmt.Errorf("copying examples/gitops: %w", err)
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch", "main", bare},
		{"-C", seed, "init", "--quiet", "--initial-branch", "main"},
		{"-C", seed, "add", "-A"},
		{"-C", seed, "-c", "user.name=platform team", "-c", "user.email=platform@acme.invalid", "commit", "--quiet", "-m", "the GitOps repository"},
		{"-C", seed, "push", "--quiet", bare, "main"},
	} {
		if _, err := git(ctx, "", args...); err != nil {
			return "", err
		}
	}
	return bare, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return string(b), nil
}

// checkPipeline verifies what the demo promises, so `make demo` fails
// loudly if a tool misbehaves.
func checkPipeline(ctx context.Context, out io.Writer, printed *bytes.Buffer, repo, prod, gitops, release string) error {
	want, err := digestOf(ctx, repo+":"+releaseSHA[:7])
	if err != nil {
		return err
	}
	var errs []error
	if want != release {
		errs = append(errs, fmt.Errorf("the promoted release %s is not the build of %s (%s)", release, releaseSHA[:7], want))
	}
	for _, ref := range []string{repo + ":v1.4.2", repo + ":1.4.2", repo + ":1.4", repo + ":1", repo + ":latest", prod + ":1.4.2"} {
		got, err := digestOf(ctx, ref)
		if err != nil || got != want {
			errs = append(errs, fmt.Errorf("%s: got %s (%v), want %s", ref, got, err, want))
		}
	}
	if got, _ := digestOf(ctx, repo+":1.3"); got == want || got == "" {
		errs = append(errs, fmt.Errorf("%s:1.3 should hold the backport", repo))
	}
	overlay, err := git(ctx, "", "--git-dir", gitops, "show", "main:apps/web/overlays/prod/kustomization.yaml")
	if err != nil {
		return err
	}
	for _, line := range []string{"# Production: pinned by digest as well.", `newTag: "1.4.2"`, "digest: " + release} {
		if !strings.Contains(overlay, line) {
			errs = append(errs, fmt.Errorf("the GitOps overlay lacks %q after bump:\n%s", line, overlay))
		}
	}
	if err := checkRun(ctx, repo+":"+releaseSHA[:7]); err != nil {
		errs = append(errs, err)
	}
	if strings.Contains(printed.String(), demoToken) {
		errs = append(errs, errors.New("the app-token secret was printed"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(out, "\ndemo OK: tests gated, images built without a daemon (a RUN in a sandbox, its secret in no layer and no log), release tags that never move backwards, a promotion, the release's digest committed to the GitOps repository, and deliver's four pipelines")
	return nil
}

// checkRun checks what the RUN of examples/app left in the image: its
// build-info.txt, written with the app-token secret, and the secret itself
// in no layer.
func checkRun(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("reading %s: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading %s: %w", ref, err)
	}
	var info []byte
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("reading a layer of %s: %w", ref, err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return fmt.Errorf("reading a layer of %s: %w", ref, err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				rc.Close()
				return fmt.Errorf("reading %s in a layer of %s: %w", hdr.Name, ref, err)
			}
			if bytes.Contains(data, []byte(demoToken)) || strings.Contains(hdr.Name, "app-token") {
				rc.Close()
				return fmt.Errorf("the app-token secret reached a layer of %s (%s)", ref, hdr.Name)
			}
			if strings.TrimPrefix(hdr.Name, "./") == "srv/www/build-info.txt" {
				info = data
			}
		}
		rc.Close()
	}
	if !bytes.Contains(info, []byte("app-token secret: given")) || !bytes.Contains(info, []byte("./index.html")) {
		return fmt.Errorf("%s: the RUN's srv/www/build-info.txt is missing or incomplete:\n%s", ref, info)
	}
	return nil
}

// dropDebug passes through every line but GitHub's ::debug:: and
// ::add-mask:: ones.
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
		if !bytes.HasPrefix(line, []byte("::debug::")) && !bytes.HasPrefix(line, []byte("::add-mask::")) {
			if _, err := d.out.Write(line); err != nil {
				return 0, err
			}
		}
		d.partial = d.partial[i+1:]
	}
}
