package ci

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/hoist-ci/hoist/internal/spec"
)

// testTool exercises every kind of input.
func testTool() spec.Tool {
	return spec.Tool{
		Name:        "demo-tool",
		Title:       "A tool for tests",
		Description: "Exercises every kind of input the platform layer reads.",
		Inputs: []spec.Input{
			{Name: "source", Type: spec.String, Description: "Image to read."},
			{Name: "tags", Type: spec.List, Aliases: []string{"destination"}, Description: "Tags to write."},
			{Name: "dry-run", Type: spec.Boolean, Default: "false", Description: "Write nothing."},
			{Name: "semver-aliases", Type: spec.Boolean, Default: "true", Description: "Write aliases."},
			{Name: "latest", Type: spec.String, Default: "auto", Options: []string{"auto", "true", "false"}, Description: "Write latest."},
			{Name: "retries", Type: spec.Number, Default: "3", Description: "Attempts."},
			{Name: "platforms", Type: spec.List, Options: []string{"linux/amd64", "linux/arm64"}, Description: "Platforms."},
			{Name: "password", Type: spec.String, Secret: true, Description: "Registry password."},
			{Name: "short-sha-length", Type: spec.Number, Description: "Short SHA length."},
		},
		Outputs: []spec.Output{
			{Name: "digest", Description: "The digest."},
			{Name: "image", Description: "The image."},
			{Name: "tags", Description: "The tags."},
		},
	}
}

func requiredTool() spec.Tool {
	t := testTool()
	t.Inputs = append(t.Inputs,
		spec.Input{Name: "target", Type: spec.String, Required: true, Description: "Where to."},
		spec.Input{Name: "cache-repo", Type: spec.String, Required: true, Description: "Cache."})
	return t
}

// harness is a fake process environment.
type harness struct {
	vars   map[string]string
	args   []string
	dir    string
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func newHarness(t *testing.T, vars map[string]string, args ...string) *harness {
	t.Helper()
	h := &harness{vars: map[string]string{}, args: args, dir: t.TempDir()}
	for k, v := range vars {
		h.vars[k] = v
	}
	return h
}

func (h *harness) env() Env {
	return Env{
		Args:   h.args,
		Getenv: func(k string) string { return h.vars[k] },
		Stdout: &h.stdout,
		Stderr: &h.stderr,
		Dir:    h.dir,
	}
}

// fixed makes a job's rendering deterministic.
func fixed(j *Job) *Job {
	j.now = func() time.Time { return time.Unix(1700000000, 0) }
	j.delimiter = func() string { return "ghadelimiter_TEST" }
	return j
}

func mustStart(t *testing.T, tool spec.Tool, h *harness) *Job {
	t.Helper()
	j, err := Start(context.Background(), tool, h.env())
	require.NoError(t, err)
	return fixed(j)
}

// ghEnv, glEnv and localEnv are the variables of each platform plus kv.
func ghEnv(kv ...string) map[string]string {
	return with(map[string]string{"GITHUB_ACTIONS": "true"}, kv...)
}
func glEnv(kv ...string) map[string]string {
	return with(map[string]string{"GITLAB_CI": "true"}, kv...)
}
func localEnv(kv ...string) map[string]string { return with(map[string]string{}, kv...) }

// azEnv is an Azure Pipelines step's environment (the agent sets
// TF_BUILD=True) plus kv.
func azEnv(kv ...string) map[string]string {
	return with(map[string]string{"TF_BUILD": "True"}, kv...)
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// goldenFile compares got with testdata/golden/name (-update rewrites it).
func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	golden.String(t, filepath.Join("testdata", "golden", name), got)
}
