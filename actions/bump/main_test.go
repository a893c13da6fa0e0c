package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/command/bump"
	"github.com/hoist-ci/hoist/internal/gitops/gittest"
	"github.com/hoist-ci/hoist/internal/spec"
)

// built is the bump binary, built once for the tests of the package.
var built struct {
	once sync.Once
	dir  string
	bin  string
	out  []byte
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildBinary builds the bump binary (once per test run).
func buildBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if testing.Short() {
			t.Skip("go is not on PATH")
		}
		t.Fatalf("building the bump binary needs go on PATH: %v", err)
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "bump-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "bump")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		built.out, built.err = exec.CommandContext(ctx, gobin, "build", "-o", built.bin, ".").CombinedOutput()
	})
	require.NoError(t, built.err, "%s", built.out)
	return built.bin
}

// TestSixteenConcurrentProcessesAllLand runs 16 bump processes at once, each
// bumping a different image in the same files of one bare repository served
// by git daemon: every commit lands, the history stays linear, every edit is
// there. Each process runs with the default max-attempts.
func TestSixteenConcurrentProcessesAllLand(t *testing.T) {
	const n = 16
	bin := buildBinary(t)
	base := t.TempDir()
	files := map[string]string{}
	var kust strings.Builder
	kust.WriteString("# every service of the platform\nresources:\n")
	for i := range n {
		fmt.Fprintf(&kust, "  - deploy/svc-%02d.yaml\n", i)
	}
	kust.WriteString("\nimages:\n")
	for i := range n {
		fmt.Fprintf(&kust, "  # service %d\n  - name: registry.example.com/team/svc-%02d\n    newTag: \"1.0.0\" # bumped by CI\n", i, i)
		files[fmt.Sprintf("deploy/svc-%02d.yaml", i)] = fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-%02d\nspec:\n  template:\n    spec:\n      containers:\n        - name: svc\n          image: registry.example.com/team/svc-%02d:1.0.0\n", i, i)
	}
	files["kustomization.yaml"] = kust.String()
	bare := gittest.BareRepo(t, base, "gitops", files)
	url := gittest.Daemon(t, base) + "/gitops.git"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// n writers racing for one branch: every round lands at least
			// one of them, so n attempts let all n land (the default, 5,
			// covers a handful; docs/bump.md says to raise it).
			cmd := exec.CommandContext(ctx, bin,
				"--repository", url, "--branch", "main", "--max-attempts", fmt.Sprint(n),
				"--images", fmt.Sprintf("registry.example.com/team/svc-%02d=2.0.%d", i, i),
				"--author", fmt.Sprintf("svc %d <svc%d@example.com>", i, i))
			cmd.Dir = t.TempDir()
			cmd.Env = []string{"HOME=" + cmd.Dir, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + cmd.Dir}
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			errs[i] = cmd.Run()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	retries, most := 0, 0
	for i := range n {
		require.NoError(t, errs[i], "process %d:\n%s", i, outs[i].String())
		r := strings.Count(outs[i].String(), "the branch moved")
		retries, most = retries+r, max(most, r)
	}
	t.Logf("16 processes landed in %s with %d retries in all, at most %d for one process", elapsed.Round(time.Millisecond), retries, most)

	subjects := gittest.Log(t, bare, "main")
	require.Len(t, subjects, n+1, "16 commits on top of the seed")
	require.Empty(t, gittest.Git(t, bare, "rev-list", "--merges", "main"), "linear history")
	require.Equal(t, fmt.Sprint(n+1), gittest.Git(t, bare, "rev-list", "--count", "--first-parent", "main"))
	got := gittest.Show(t, bare, "main", "kustomization.yaml")
	want := files["kustomization.yaml"]
	for i := range n {
		require.Contains(t, subjects, fmt.Sprintf("chore(deploy): bump registry.example.com/team/svc-%02d to 2.0.%d", i, i))
		want = strings.Replace(want, fmt.Sprintf("svc-%02d\n    newTag: \"1.0.0\"", i), fmt.Sprintf("svc-%02d\n    newTag: \"2.0.%d\"", i, i), 1)
		require.Contains(t, gittest.Show(t, bare, "main", fmt.Sprintf("deploy/svc-%02d.yaml", i)), fmt.Sprintf("image: registry.example.com/team/svc-%02d:2.0.%d", i, i))
	}
	require.Equal(t, strings.TrimSuffix(want, "\n"), got, "every edit present, nothing else changed")
}

const canary = "CANARY-7c2f-bump-token"

func invoke(t *testing.T, args []string, env map[string]string, dir string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := ci.Main(context.Background(), spec.Bump(), ci.Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdout: &out,
		Stderr: &out,
		Dir:    dir,
	}, bump.Run)
	return code, out.String()
}

// TestCanaryTokenNeverLeaks fails to push over https to a closed loopback
// port with a canary token and checks no output carries it.
func TestCanaryTokenNeverLeaks(t *testing.T) {
	gittest.RequireGit(t)
	for _, platform := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"cli", map[string]string{}, []string{"--repository", "https://127.0.0.1:1/team/gitops.git", "--images", "team/app=1", "--token", canary}},
		{"github", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM",
			"INPUT_REPOSITORY": "https://x-access-token:" + canary + "@127.0.0.1:1/team/gitops.git", "INPUT_IMAGES": "team/app=1", "INPUT_TOKEN": canary}, nil},
		{"gitlab", map[string]string{"GITLAB_CI": "true", "CI_PROJECT_DIR": "DIR",
			"INPUT_REPOSITORY": "https://127.0.0.1:1/team/gitops.git", "INPUT_IMAGES": "team/app=1", "INPUT_TOKEN": canary}, nil},
	} {
		t.Run(platform.name, func(t *testing.T) {
			dir := t.TempDir()
			for k, v := range platform.env {
				switch v {
				case "OUT", "SUM":
					platform.env[k] = filepath.Join(dir, v)
				case "DIR":
					platform.env[k] = dir
				}
			}
			code, out := invoke(t, platform.args, platform.env, dir)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, "127.0.0.1:1")
			all := out
			for _, f := range []string{"OUT", "SUM", "bump.env"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					all += string(b)
				}
			}
			if platform.name == "github" {
				all = strings.ReplaceAll(all, "::add-mask::"+canary+"\n", "")
				summary, err := os.ReadFile(filepath.Join(dir, "SUM"))
				require.NoError(t, err)
				require.Contains(t, string(summary), "### bump: failed", "a failed run's summary must not say nothing to change")
				require.NotContains(t, string(summary), "nothing to change")
			}
			require.NotContains(t, all, canary)
		})
	}
}

// TestIssueExample runs the CLI line from the issue, in dry-run and commit
// modes, against a local bare repository.
func TestIssueExample(t *testing.T) {
	const d = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", map[string]string{
		"deploy/app.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/app:1.4.1 # keep\n",
	})
	args := []string{"--paths", "deploy/", "--images", "registry.example.com/team/app=registry.example.com/team/app:1.4.2@" + d, "--repository", bare}
	code, out := invoke(t, append(args, "--mode", "dry-run"), map[string]string{}, t.TempDir())
	require.Equal(t, 0, code, out)
	require.Len(t, gittest.Log(t, bare, "main"), 1)

	code, out = invoke(t, append(args, "--mode", "commit"), map[string]string{}, t.TempDir())
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "commit=")
	require.Contains(t, gittest.Show(t, bare, "main", "deploy/app.yaml"), "image: registry.example.com/team/app:1.4.2@"+d+" # keep")
}

// TestCanarySigningKeyNeverLeaks passes a malformed signing key and a wrong
// passphrase carrying canaries: the failure names the input, never the key.
func TestCanarySigningKeyNeverLeaks(t *testing.T) {
	gittest.RequireGit(t)
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nCANARY-sign-key-material\n-----END OPENSSH PRIVATE KEY-----\n"
	const pass = "CANARY-sign-passphrase"
	dir := t.TempDir()
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "OUT"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "SUM"),
		"INPUT_REPOSITORY": filepath.Join(dir, "none.git"), "INPUT_IMAGES": "team/app=1", "INPUT_SIGNING-KEY": key, "INPUT_SIGNING-KEY-PASSPHRASE": pass}
	code, out := invoke(t, nil, env, dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "signing-key: unusable signing key", out)
	all := out
	for _, f := range []string{"OUT", "SUM"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			all += string(b)
		}
	}
	for _, line := range []string{"::add-mask::" + pass + "\n", "::add-mask::CANARY-sign-key-material\n"} {
		all = strings.ReplaceAll(all, line, "")
	}
	require.NotContains(t, all, "CANARY")
}
