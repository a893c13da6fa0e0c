// Package differential builds real-world Dockerfiles with build-push and
// with BuildKit (Docker's builder: buildkitd and buildctl, built by the rig
// at the version hoist takes its Dockerfile parser from) and compares the
// two images entry by entry: every filesystem path (type, mode with
// setuid/setgid/sticky, owner, size, link target, content digest, xattrs;
// times aside), the config and the history. Every case is built by
// build-push twice, cold and then warm from its registry layer cache, each
// time in a fresh process (the build-push binary); the warm image must have
// the cold one's digest and build no layer.
//
// Cases live in testdata/cases/<name>/: a Dockerfile, the context's files,
// and case.yaml (what the case covers, its base, build args, a setup script
// for what git cannot hold, and where BuildKit differs from folklore).
// testdata/cases/README.md lists them.
package differential

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/hoist-ci/hoist/internal/testrig"
)

var only = flag.String("case", "", "run only the cases whose name contains this")

const casesDir = "testdata/cases"

// epoch is SOURCE_DATE_EPOCH of build-push's builds: reproducible, so the
// warm build must give the cold build's digest.
const epoch = "1700000000"

// caseSpec is a case's case.yaml.
type caseSpec struct {
	// Why says what the case covers, in a line.
	Why string `yaml:"why"`
	// Base is the image ${BASE} names: busybox (default) or debian.
	Base   string            `yaml:"base"`
	Args   map[string]string `yaml:"args"`
	Target string            `yaml:"target"`
	// Setup runs with sh -e in a copy of the case directory before the
	// builds: modes, owners, archives and links git does not keep.
	Setup string `yaml:"setup"`
	// Note records where BuildKit's behaviour differs from what one might
	// expect (or from the classic builder) and which one the case follows.
	Note string `yaml:"note"`
	// Fails: both builders must refuse the Dockerfile; the build-push
	// error must contain each of these strings.
	Fails []string `yaml:"fails"`
	// Slow cases (apt-get on the Debian base) run unless -short.
	Slow bool `yaml:"slow"`
	// Differs lists the differences from BuildKit's image that are known
	// and not fixed yet, exactly as the comparison prints them (a line
	// each); the case fails when they change, so a fix shows.
	Differs []string `yaml:"differs"`
}

type env struct {
	reg    *testrig.Reg
	bk     *testrig.BuildKit
	hoist  string // the build-push binary
	bases  map[string]string
	debian sync.Once
	baseMu sync.Mutex
	t      *testing.T
}

func TestDifferential(t *testing.T) {
	testrig.RequireDocker(t) // the rig is up: registry, buildkitd, the Debian base cache
	reg := testrig.Registry(t, testrig.RegistryOptions{Quiet: true})
	bk := testrig.StartBuildKit(t, reg.Host)
	e := &env{reg: reg, bk: bk, t: t, bases: map[string]string{}}
	e.hoist = buildHoist(t)
	busybox, err := testrig.BusyboxImage()
	require.NoError(t, err, "busybox-static is part of the rig: test/rig/install.sh")
	e.bases["busybox"] = reg.Host + "/base/busybox:1"
	testrig.PushImage(t, busybox, e.bases["busybox"])

	entries, err := os.ReadDir(casesDir)
	require.NoError(t, err)
	var names []string
	for _, d := range entries {
		if d.IsDir() && (*only == "" || strings.Contains(d.Name(), *only)) {
			names = append(names, d.Name())
		}
	}
	require.NotEmpty(t, names)
	t.Logf("%d cases", len(names))
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			t.Parallel()
			e.runCase(t, n)
		})
	}
}

// buildHoist compiles build-push once for the test run.
func buildHoist(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "build-push")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "../../actions/build-push")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./actions/build-push: %s", b)
	return out
}

func (e *env) base(t *testing.T, kind string) string {
	t.Helper()
	if kind == "" || kind == "busybox" {
		return e.bases["busybox"]
	}
	require.Equal(t, "debian", kind, "case.yaml base: busybox or debian")
	e.debian.Do(func() {
		ref := e.reg.Host + "/base/debian:1"
		img := testrig.DebianImageT(e.t)
		testrig.PushImage(e.t, img, ref)
		e.baseMu.Lock()
		e.bases["debian"] = ref
		e.baseMu.Unlock()
	})
	e.baseMu.Lock()
	defer e.baseMu.Unlock()
	ref, ok := e.bases["debian"]
	require.True(t, ok, "the Debian base could not be made")
	return ref
}

func readSpec(t *testing.T, dir string) caseSpec {
	t.Helper()
	var s caseSpec
	data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
	require.NoError(t, err, "every case has a case.yaml")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&s), "%s/case.yaml", dir)
	require.NotEmpty(t, s.Why, "%s/case.yaml: say what the case covers (why:)", dir)
	return s
}

// prepare copies the case's context (all but case.yaml) into a temporary
// directory and runs its setup there.
func prepare(t *testing.T, dir string, s caseSpec) string {
	t.Helper()
	ctxDir := filepath.Join(t.TempDir(), "context")
	cmd := exec.Command("cp", "-a", dir, ctxDir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "copying %s: %s", dir, out)
	require.NoError(t, os.Remove(filepath.Join(ctxDir, "case.yaml")))
	if s.Setup != "" {
		cmd := exec.Command("sh", "-ec", s.Setup)
		cmd.Dir = ctxDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "setup: %s", out)
	}
	return ctxDir
}

func (e *env) runCase(t *testing.T, n string) {
	dir, err := filepath.Abs(filepath.Join(casesDir, n))
	require.NoError(t, err)
	s := readSpec(t, dir)
	if s.Slow && testing.Short() {
		t.Skip("slow case; skipped in -short mode")
	}
	ctxDir := prepare(t, dir, s)
	args := map[string]string{"BASE": e.base(t, s.Base)}
	maps.Copy(args, s.Args)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	want, bkLog, bkErr := e.bk.Build(ctx, testrig.BuildKitBuild{Context: ctxDir, Args: args, Target: s.Target, Out: filepath.Join(t.TempDir(), "oci")})
	bkTime := time.Since(start)

	repo := fmt.Sprintf("%s/diff/%s", e.reg.Host, n)
	start = time.Now()
	cold, coldOut, coldErr := e.buildPush(ctx, ctxDir, repo+":cold", repo+"-cache", args, s.Target)
	coldTime := time.Since(start)
	if len(s.Fails) > 0 {
		require.Error(t, bkErr, "BuildKit must refuse this Dockerfile too; its log:\n%s", bkLog)
		require.Error(t, coldErr, "build-push must refuse this Dockerfile; its output:\n%s", coldOut)
		for _, f := range s.Fails {
			require.Contains(t, coldOut, f, "the build-push error says what is wrong")
		}
		return
	}
	require.NoError(t, bkErr, "BuildKit's build; its log:\n%s", bkLog)
	require.NoError(t, coldErr, "build-push, cold; its output:\n%s", coldOut)

	start = time.Now()
	warm, warmOut, warmErr := e.buildPush(ctx, ctxDir, repo+":warm", repo+"-cache", args, s.Target)
	warmTime := time.Since(start)
	require.NoError(t, warmErr, "build-push, warm from the cache; its output:\n%s", warmOut)
	t.Logf("BuildKit %s, build-push cold %s, warm %s", bkTime.Round(10*time.Millisecond), coldTime.Round(10*time.Millisecond), warmTime.Round(10*time.Millisecond))
	require.Equal(t, cold.digest, warm.digest, "the warm build gives the cold build's image (reproducible: same digest); warm output:\n%s", warmOut)
	require.Zero(t, warm.built, "a warm build takes every layer from the cache; warm output:\n%s", warmOut)

	got := e.pull(t, repo+":cold")
	diffs := compare(t, want, got)
	if len(s.Differs) > 0 {
		require.Equal(t, s.Differs, diffs, "the known differences from BuildKit changed: update case.yaml's differs (and README) if this is a fix")
		t.Logf("known differences from BuildKit (case.yaml differs):\n  %s", strings.Join(diffs, "\n  "))
		return
	}
	if len(diffs) > 0 {
		t.Errorf("build-push's image differs from BuildKit's in %d places:\n  %s", len(diffs), strings.Join(diffs, "\n  "))
	}
}

type hoistResult struct {
	digest string
	built  int
}

// buildPush runs the build-push binary as a CLI, outside any CI.
func (e *env) buildPush(ctx context.Context, ctxDir, tag, cacheRepo string, args map[string]string, target string) (hoistResult, string, error) {
	cmdArgs := []string{"--context", ctxDir, "--tags", tag, "--cache", "--cache-repo", cacheRepo,
		"--insecure-registries", e.reg.Host, "--reproducible"}
	for _, k := range slices.Sorted(maps.Keys(args)) {
		cmdArgs = append(cmdArgs, "--build-arg", k+"="+args[k])
	}
	if target != "" {
		cmdArgs = append(cmdArgs, "--target", target)
	}
	cmd := exec.CommandContext(ctx, e.hoist, cmdArgs...)
	// Outside any git repository: no labels from git, as BuildKit writes none.
	cmd.Dir = filepath.Dir(ctxDir)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "GITHUB_ACTIONS" || k == "GITLAB_CI" || k == "CI" || strings.HasPrefix(k, "INPUT_") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "SOURCE_DATE_EPOCH="+epoch)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String() + stderr.String()
	if err != nil {
		return hoistResult{}, out, err
	}
	var r hoistResult
	for _, line := range strings.Split(stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "digest="); ok {
			r.digest = v
		}
		if v, ok := strings.CutPrefix(line, "metadata="); ok {
			var md map[string]any
			if err := json.Unmarshal([]byte(v), &md); err != nil {
				return r, out, fmt.Errorf("metadata output: %w", err)
			}
			if n, ok := md["layers.built"].(float64); ok {
				r.built = int(n)
			}
		}
	}
	if r.digest == "" {
		return r, out, fmt.Errorf("no digest= output")
	}
	return r, out, nil
}

func (e *env) pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	require.NoError(t, err)
	return img
}

// hoistLabels are the labels build-push computes (metadata-action's
// semantics) that a plain BuildKit build does not write.
var hoistLabels = []string{"org.opencontainers.image.created", "org.opencontainers.image.title"}

// compare lists where the images differ, entry by entry.
func compare(t *testing.T, want, got v1.Image) []string {
	t.Helper()
	wfs, err := testrig.FlattenImage(want)
	require.NoError(t, err, "flattening BuildKit's image")
	gfs, err := testrig.FlattenImage(got)
	require.NoError(t, err, "flattening build-push's image")
	diffs := testrig.DiffFS(wfs, gfs)

	wcf, err := want.ConfigFile()
	require.NoError(t, err)
	gcf, err := got.ConfigFile()
	require.NoError(t, err)
	// BuildKit marks the history of its filesystem steps " # buildkit".
	wv := testrig.ViewConfig(wcf, func(s string) string { return strings.TrimSuffix(s, " # buildkit") })
	gv := testrig.ViewConfig(gcf, nil)
	gv.Labels = maps.Clone(gv.Labels)
	for _, k := range hoistLabels {
		if _, ok := wv.Labels[k]; !ok {
			delete(gv.Labels, k)
		}
	}
	return append(diffs, testrig.DiffConfig(wv, gv)...)
}

// readmeHead is the top of testdata/cases/README.md; the table and the
// notes below it come from the cases' case.yaml.
const readmeHead = `# Differential corpus: build-push against BuildKit

` + "`TestDifferential`" + ` (../../differential_test.go) builds every case here twice with build-push
(cold, then warm from its registry layer cache, each a fresh ` + "`build-push`" + ` process,
` + "`SOURCE_DATE_EPOCH`" + ` set) and once with BuildKit (` + "`buildkitd`" + ` and ` + "`buildctl`" + `, Docker's builder, built by
the rig at the version of ` + "`github.com/moby/buildkit`" + ` in go.mod), pushes nothing of BuildKit's, and
compares the images entry by entry: every path's type, mode (setuid, setgid and sticky included),
owner, size, link target, content digest and xattrs (times aside), the config (Env, Cmd,
Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels, Shell, Healthcheck, StopSignal,
OnBuild) and the history (BuildKit's ` + "`# buildkit`" + ` marker aside; the labels build-push computes,
` + "`org.opencontainers.image.created`" + ` and ` + "`.title`" + `, aside). The warm image must have the cold image's
digest and build no layer.

A case is a directory: its ` + "`Dockerfile`" + ` (` + "`ARG BASE`" + ` / ` + "`FROM ${BASE}`" + `: a busybox-static image whose /tmp is
1777, or a debootstrap Debian bookworm), the context's files, and ` + "`case.yaml`" + `: ` + "`why`" + ` (what it
covers), ` + "`base`" + `, ` + "`args`" + `, ` + "`target`" + `, ` + "`setup`" + ` (a shell script run in the copied context for what git
cannot hold: modes, owners, archives, links, xattrs), ` + "`note`" + ` (where BuildKit differs from folklore
or from the classic builder, and which one the case follows: BuildKit, always), ` + "`slow`" + `, ` + "`fails`" + `
(both builders must refuse it; build-push's error must say these words).

Run one case: ` + "`go test ./test/differential -run TestDifferential -args -case copy-into-tmp`" + `.
This README is written by ` + "`go test ./test/differential -run TestCasesAreDocumented -args -update`" + `.

`

// TestCasesAreDocumented keeps testdata/cases/README.md in step with the
// cases (it runs without the rig), and the corpus at 60 cases or more.
func TestCasesAreDocumented(t *testing.T) {
	entries, err := os.ReadDir(casesDir)
	require.NoError(t, err)
	var b strings.Builder
	b.WriteString(readmeHead)
	b.WriteString("| case | what it covers |\n|---|---|\n")
	var notes strings.Builder
	n := 0
	for _, d := range entries {
		if !d.IsDir() {
			continue
		}
		n++
		s := readSpec(t, filepath.Join(casesDir, d.Name()))
		why := s.Why
		if s.Base == "debian" {
			why += " (Debian base)"
		}
		if len(s.Fails) > 0 {
			why += " — both refuse it"
		}
		if len(s.Differs) > 0 {
			why += " — **differs from BuildKit** (known, listed below)"
			fmt.Fprintf(&notes, "- **%s** differs from BuildKit, not fixed yet: `%s`\n", d.Name(), strings.Join(s.Differs, "`; `"))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", d.Name(), strings.ReplaceAll(why, "|", "\\|"))
		if s.Note != "" {
			fmt.Fprintf(&notes, "- **%s**: %s\n", d.Name(), strings.TrimSpace(strings.Join(strings.Fields(s.Note), " ")))
		}
	}
	if notes.Len() > 0 {
		b.WriteString("\n## Where BuildKit is not what one might expect\n\n")
		b.WriteString(notes.String())
	}
	golden.String(t, filepath.Join(casesDir, "README.md"), b.String())
	require.GreaterOrEqual(t, n, 60, "the corpus keeps at least 60 cases")
}
