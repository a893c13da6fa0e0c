package buildpush

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

var dockerOracle = flag.Bool("docker-oracle", false, "also build the corpus cases Docker's classic builder supports with `DOCKER_BUILDKIT=0 docker build` in the rig's engine and compare their output with the same expected output")

// corpusDir holds the correctness corpus: one directory per case with
// its Dockerfile (FROM ${BASE}), context files and expected output.
const corpusDir = "testdata/corpus"

// corpusBuild is one build of a case. A case with several builds shares
// its cache-dir between them, and its expected output has a "== name =="
// header before each build's output.
type corpusBuild struct {
	name string
	args map[string]string // build args besides BASE
}

type corpusCase struct {
	name   string
	debian bool // FROM the debootstrap Debian base, else the busybox one
	builds []corpusBuild
	// fails: the build must fail; expected lists lines its error contains.
	fails bool
	// classic: Docker's classic builder builds it as BuildKit does (no
	// heredocs, no RUN --mount, no WORKDIR created for a USER), so
	// -docker-oracle can check the expected output against Docker.
	classic bool
}

var corpusCases = []corpusCase{
	{name: "multi-stage", classic: true},
	{name: "churn", classic: true},
	{name: "whiteouts", classic: true},
	{name: "links-modes", classic: true},
	{name: "users"},
	{name: "heredocs"},
	{name: "env-arg", classic: true, builds: []corpusBuild{
		{name: "default"},
		{name: "overridden", args: map[string]string{"FLAVOR": "chocolate", "LEVEL": "9", "LATE": "late-value", "GLOBAL": "global-override"}},
	}},
	{name: "shell-exec", classic: true},
	{name: "cache-mount", builds: []corpusBuild{
		{name: "first", args: map[string]string{"PASS": "1"}},
		{name: "second", args: map[string]string{"PASS": "2"}},
	}},
	{name: "exit-code", fails: true},
	{name: "debian-dpkg", debian: true, classic: true},
	{name: "debian-app", debian: true, classic: true},
}

// TestCorpus builds every case of testdata/corpus with RUN from a
// busybox-static base or a debootstrap Debian base, pushes it to the real
// registry (Debian's docker-registry), then pulls and runs it in the
// rig's Docker engine (`docker run --rm --network none`) and compares its
// output with the case's expected output. -update rewrites them.
func TestCorpus(t *testing.T) {
	testrig.RequireDocker(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("the docker client is not installed: %v (test/rig/install.sh installs docker.io)", err)
	}
	reg := testrig.Registry(t, testrig.RegistryOptions{Quiet: true})
	client, err := registry.New(registry.Options{Insecure: []string{reg.Host}, UserAgent: "hoist/test"})
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)

	bases := map[bool]string{false: reg.Host + "/corpus-base/busybox:1", true: reg.Host + "/corpus-base/debian:1"}
	busybox, err := testrig.BusyboxImage()
	require.NoError(t, err, "busybox-static is part of the rig: test/rig/install.sh")
	testrig.PushImage(t, busybox, bases[false])
	testrig.PushImage(t, testrig.DebianImageT(t), bases[true])
	if *dockerOracle {
		// the classic builder pulls the bases into the engine
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", bases[false], bases[true]).Run() })
	}

	for _, tc := range corpusCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, err := filepath.Abs(filepath.Join(corpusDir, tc.name))
			require.NoError(t, err)
			builds := tc.builds
			if len(builds) == 0 {
				builds = []corpusBuild{{name: "only"}}
			}
			cacheDir := t.TempDir()
			var got, oracle strings.Builder
			for _, b := range builds {
				if len(builds) > 1 {
					fmt.Fprintf(&got, "== %s ==\n", b.name)
					fmt.Fprintf(&oracle, "== %s ==\n", b.name)
				}
				ref := fmt.Sprintf("%s/corpus/%s:%s", reg.Host, tc.name, b.name)
				args := map[string]string{"BASE": bases[tc.debian]}
				maps.Copy(args, b.args)
				var out bytes.Buffer
				o := Options{
					Context: dir, Tags: []string{ref}, Push: true, Registry: client, BuildArgs: args,
					SandboxInit: self, CacheDir: cacheDir, TempDir: t.TempDir(), Output: linesTo(&out),
				}
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				start := time.Now()
				_, err := Run(ctx, o)
				cancel()
				built := time.Since(start)
				if tc.fails {
					require.Error(t, err, "the build must fail; its RUN output:\n%s", out.String())
					t.Logf("build error: %v", err)
					got.WriteString(err.Error())
					continue
				}
				require.NoError(t, err, "building %s; RUN output:\n%s", tc.name, out.String())
				start = time.Now()
				got.WriteString(dockerRun(t, ref))
				t.Logf("%s: built and pushed in %s, pulled and run in %s", b.name, built.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))
				if *dockerOracle && tc.classic {
					oracle.WriteString(classicBuild(t, dir, args, fmt.Sprintf("hoist-corpus-classic/%s:%s", tc.name, b.name)))
				}
			}
			expectedPath := filepath.Join(dir, "expected")
			if golden.Update() && !tc.fails {
				golden.String(t, expectedPath, got.String())
				return
			}
			want, err := os.ReadFile(expectedPath)
			require.NoError(t, err)
			if tc.fails {
				for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
					require.Contains(t, got.String(), line, "the error names the failing command, its exit code and its last output")
				}
				return
			}
			if *dockerOracle && tc.classic {
				require.Equal(t, string(want), oracle.String(), "output of the image Docker's classic builder built")
			}
			require.Equal(t, string(want), got.String(), "output of `docker run %s` (-update rewrites %s)", tc.name, expectedPath)
		})
	}
}

// dockerRun pulls ref into the rig's engine, runs it without a network
// and returns its standard output; the image is removed when the test
// ends.
func dockerRun(t *testing.T, ref string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "pull", "-q", ref).CombinedOutput()
	require.NoError(t, err, "docker pull %s: %s", ref, out)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", ref)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "docker run %s\nstdout:\n%s\nstderr:\n%s", ref, stdout.String(), stderr.String())
	if stderr.Len() > 0 {
		t.Logf("docker run %s, stderr:\n%s", ref, stderr.String())
	}
	return stdout.String()
}

// classicBuild builds dir with Docker's classic builder in the rig's
// engine (no network; FROM images pulled from the test registry), runs
// the image as dockerRun does and returns its standard output.
func classicBuild(t *testing.T, dir string, args map[string]string, tag string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmdArgs := []string{"build", "-q", "--network", "none", "-t", tag}
	for _, k := range slices.Sorted(maps.Keys(args)) {
		cmdArgs = append(cmdArgs, "--build-arg", k+"="+args[k])
	}
	cmd := exec.CommandContext(ctx, "docker", append(cmdArgs, dir)...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "DOCKER_BUILDKIT=0 docker build %s: %s", dir, out)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	var stdout, stderr bytes.Buffer
	run := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", tag)
	run.Stdout, run.Stderr = &stdout, &stderr
	require.NoError(t, run.Run(), "docker run %s\nstdout:\n%s\nstderr:\n%s", tag, stdout.String(), stderr.String())
	return stdout.String()
}
