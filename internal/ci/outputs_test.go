package ci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

func sampleOutputs() map[string]string {
	return map[string]string{
		"tags":   "reg.example.com/app:1.4.2\nreg.example.com/app:1.4\nreg.example.com/app:1",
		"digest": "sha256:0123456789abcdef",
		"image":  "reg.example.com/app@sha256:0123456789abcdef",
	}
}

func TestGitHubOutputs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "github_output")
	require.NoError(t, os.WriteFile(out, []byte("earlier=kept\n"), 0o644))
	j := mustStart(t, testTool(), newHarness(t, ghEnv("GITHUB_OUTPUT", out)))
	require.NoError(t, j.writeOutputs(sampleOutputs()))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	goldenFile(t, "github-output.txt", string(got))
}

func TestGitHubOutputDelimiterInValue(t *testing.T) {
	out := filepath.Join(t.TempDir(), "github_output")
	j := mustStart(t, testTool(), newHarness(t, ghEnv("GITHUB_OUTPUT", out)))
	value := "line one\nghadelimiter_TEST\nline three"
	require.NoError(t, j.writeOutputs(map[string]string{"digest": value}))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	name, rest, ok := strings.Cut(string(got), "<<")
	require.True(t, ok)
	require.Equal(t, "digest", name)
	delim, body, _ := strings.Cut(rest, "\n")
	require.NotEqual(t, "ghadelimiter_TEST", delim)
	require.Equal(t, value+"\n"+delim+"\n", body)
}

func TestGitHubOutputUnset(t *testing.T) {
	j := mustStart(t, testTool(), newHarness(t, ghEnv()))
	require.ErrorContains(t, j.writeOutputs(sampleOutputs()), "GITHUB_OUTPUT is not set")
	require.NoError(t, j.writeOutputs(nil), "nothing to write is not an error")
}

func TestGitLabDotenv(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, glEnv("CI_PROJECT_DIR", dir))
	j := mustStart(t, testTool(), h)
	require.NoError(t, j.writeOutputs(sampleOutputs()))
	got, err := os.ReadFile(filepath.Join(dir, "demo-tool.env"))
	require.NoError(t, err)
	goldenFile(t, "gitlab.env", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}

func TestGitLabDotenvRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "reports", "out.env")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte("STALE=1\n"), 0o644))
	h := newHarness(t, glEnv("CI_PROJECT_DIR", dir, "HOIST_DOTENV", path))
	j := mustStart(t, testTool(), h)
	require.NoError(t, j.writeOutputs(map[string]string{
		"digest": "  sha256:abc  ",
		"image":  "cost $HOME",
		"tags":   strings.Repeat("x", 6000),
	}))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "DEMO_TOOL_DIGEST=sha256:abc\n", string(got))
	require.Contains(t, h.stdout.String(), "warning: output left out of the dotenv report: it contains '$', which GitLab would expand as a variable output=image variable=DEMO_TOOL_IMAGE\n")
	require.Contains(t, h.stdout.String(), "warning: output left out of the dotenv report: it would exceed GitLab's 5120-byte limit output=tags variable=DEMO_TOOL_TAGS bytes=6016\n")

	require.NoError(t, j.writeOutputs(map[string]string{"digest": "a\x00b", "tags": "ok"}))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "DEMO_TOOL_TAGS=ok\n", string(got))
	require.Contains(t, h.stdout.String(), "output left out of the dotenv report: it contains control characters or invalid UTF-8 output=digest")
}

func TestGitLabDotenvLimits(t *testing.T) {
	tool := testTool()
	tool.Outputs = nil
	outputs := map[string]string{}
	for i := 1; i <= 25; i++ {
		name := fmt.Sprintf("out-%02d", i)
		tool.Outputs = append(tool.Outputs, spec.Output{Name: name, Description: "x"})
		outputs[name] = strings.Repeat("v", 200)
	}
	dir := t.TempDir()
	h := newHarness(t, glEnv("CI_PROJECT_DIR", dir))
	j := mustStart(t, tool, h)
	require.NoError(t, j.writeOutputs(outputs))
	got, err := os.ReadFile(filepath.Join(dir, "demo-tool.env"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	require.Len(t, lines, 20)
	require.Less(t, len(got), dotenvMaxSize)
	for _, l := range lines {
		require.Regexp(t, `^[A-Z0-9_]+=[^\n]*$`, l)
	}
	require.Contains(t, h.stdout.String(), "GitLab accepts at most 20 variables output=out-21")

	// Size: 19 values of 300 bytes would pass 5 KiB.
	h = newHarness(t, glEnv("CI_PROJECT_DIR", dir))
	tool.Outputs = tool.Outputs[:0]
	outputs = map[string]string{}
	for i := 1; i <= 19; i++ {
		name := fmt.Sprintf("out-%02d", i)
		tool.Outputs = append(tool.Outputs, spec.Output{Name: name, Description: "x"})
		outputs[name] = strings.Repeat("v", 300)
	}
	j = mustStart(t, tool, h)
	require.NoError(t, j.writeOutputs(outputs))
	got, err = os.ReadFile(filepath.Join(dir, "demo-tool.env"))
	require.NoError(t, err)
	require.Less(t, len(got), dotenvMaxSize)
	require.Contains(t, h.stdout.String(), "it would exceed GitLab's 5120-byte limit output=out-17")
}

func TestLocalOutputs(t *testing.T) {
	h := newHarness(t, localEnv())
	j := mustStart(t, testTool(), h)
	require.NoError(t, j.writeOutputs(sampleOutputs()))
	require.Equal(t, "digest=sha256:0123456789abcdef\n"+
		"image=reg.example.com/app@sha256:0123456789abcdef\n"+
		"tags=reg.example.com/app:1.4.2,reg.example.com/app:1.4,reg.example.com/app:1\n", h.stdout.String())
}

func TestUndeclaredOutput(t *testing.T) {
	h := newHarness(t, localEnv())
	code := Main(context.Background(), testTool(), h.env(), func(context.Context, *Job) (map[string]string, error) {
		return map[string]string{"digest": "sha256:1", "bogus": "x", "also": "y"}, nil
	})
	require.Equal(t, ExitError, code)
	require.Equal(t, "digest=sha256:1\n", h.stdout.String())
	require.Contains(t, h.stderr.String(), "error: internal error: demo-tool returned undeclared outputs also, bogus")
}

func TestOutputsWrittenOnFailure(t *testing.T) {
	out := filepath.Join(t.TempDir(), "github_output")
	h := newHarness(t, ghEnv("GITHUB_OUTPUT", out))
	code := Main(context.Background(), testTool(), h.env(), func(context.Context, *Job) (map[string]string, error) {
		return map[string]string{"tags": "r:1"}, fmt.Errorf("writing tag r:2: denied")
	})
	require.Equal(t, ExitError, code)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(got), "tags<<ghadelimiter_")
	require.Contains(t, h.stdout.String(), "::error::writing tag r:2: denied\n")
}

func TestDotenvPrefix(t *testing.T) {
	withPrefix := testTool()
	withPrefix.Inputs = append(withPrefix.Inputs, spec.OutputInputs()...)
	for _, tc := range []struct {
		name string
		tool spec.Tool
		env  []string
		want string
	}{
		{"the default job name keeps today's names", withPrefix, []string{"CI_JOB_NAME", "demo-tool"}, "DEMO_TOOL_DIGEST=sha256:abc\n"},
		{"no job name: the tool's", withPrefix, nil, "DEMO_TOOL_DIGEST=sha256:abc\n"},
		{"a second job of the same tool", withPrefix, []string{"CI_JOB_NAME", "build-push:api"}, "BUILD_PUSH_API_DIGEST=sha256:abc\n"},
		{"runs of other characters become one underscore", withPrefix, []string{"CI_JOB_NAME", "build: [linux/amd64, web] "}, "BUILD_LINUX_AMD64_WEB_DIGEST=sha256:abc\n"},
		{"a job name of nothing usable", withPrefix, []string{"CI_JOB_NAME", "🚀 --"}, "DEMO_TOOL_DIGEST=sha256:abc\n"},
		{"the input wins over the job name", withPrefix, []string{"CI_JOB_NAME", "build", "INPUT_OUTPUT_PREFIX", "api"}, "API_DIGEST=sha256:abc\n"},
		{"the input is normalised like a job name", withPrefix, []string{"INPUT_OUTPUT_PREFIX", "web-app."}, "WEB_APP_DIGEST=sha256:abc\n"},
		{"a tool without the input uses the job name", testTool(), []string{"CI_JOB_NAME", "retag-web"}, "RETAG_WEB_DIGEST=sha256:abc\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.env")
			h := newHarness(t, glEnv(append([]string{"CI_PROJECT_DIR", dir, "HOIST_DOTENV", path}, tc.env...)...))
			j := mustStart(t, tc.tool, h)
			require.NoError(t, j.writeOutputs(map[string]string{"digest": "sha256:abc"}))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestEveryToolTakesAnOutputPrefix(t *testing.T) {
	for _, tool := range spec.Tools() {
		in, ok := tool.Input(spec.OutputPrefixInput)
		require.True(t, ok, "%s has no %s input", tool.Name, spec.OutputPrefixInput)
		require.Empty(t, in.Default, "%s: the default is computed from the job name", tool.Name)
	}
}
