package ci

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// canary is a secret with every character the escapings touch.
const canary = `CANARY-p%a:s"w,1\x`

// withoutAddMask drops the ::add-mask:: lines: they must carry the secret
// (the runner hides them), nothing else may.
func withoutAddMask(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestCanaryNeverWritten(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"github flag", ghEnv(), []string{"--password", canary}},
		{"github env", ghEnv("INPUT_PASSWORD", canary), nil},
		{"gitlab flag", glEnv(), []string{"--password=" + canary}},
		{"gitlab env", glEnv("INPUT_PASSWORD", canary), nil},
		{"local flag", localEnv(), []string{"--password", canary}},
		{"local env", localEnv("INPUT_PASSWORD", canary), nil},
		{"credential variable", glEnv("CI_REGISTRY_PASSWORD", canary), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := with(tt.vars,
				"HOIST_DEBUG", "true",
				"GITHUB_OUTPUT", filepath.Join(dir, "github_output"),
				"GITHUB_STEP_SUMMARY", filepath.Join(dir, "summary.md"),
				"CI_PROJECT_DIR", dir)
			h := newHarness(t, vars, tt.args...)
			code := Main(context.Background(), testTool(), h.env(), func(_ context.Context, j *Job) (map[string]string, error) {
				end := j.Group("logging in with " + canary)
				j.Log.Info("password is "+canary, "password", canary, "quoted", fmt.Sprintf("%q", canary))
				j.Log.Debug("debug", "secret", canary)
				j.Log.Warn("warn " + canary)
				j.Log.Error("error", "err", fmt.Errorf("auth %q failed", canary))
				end()
				j.Annotate(Annotation{Level: "error", File: "a.yml", Line: 1, Title: canary, Message: "bad " + canary})
				require.NoError(t, j.AddSummary("| secret | "+canary+" |"))
				return map[string]string{"digest": "sha256:1", "image": "user:" + canary + "@host"},
					fmt.Errorf("logging in to registry with %s: %w", canary, fmt.Errorf("denied %q", canary))
			})
			require.Equal(t, ExitError, code)

			written := map[string]string{"stdout": withoutAddMask(h.stdout.String()), "stderr": h.stderr.String()}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				require.NoError(t, err)
				written[e.Name()] = string(b)
			}
			for where, text := range written {
				require.NotContains(t, text, "CANARY", "the secret leaked into %s:\n%s", where, text)
			}
			require.Contains(t, h.stdout.String()+h.stderr.String(), redacted)
			if vars["GITHUB_ACTIONS"] == "true" && tt.name != "credential variable" {
				require.True(t, strings.HasPrefix(h.stdout.String(), "::add-mask::"), "the mask comes first:\n%s", h.stdout.String())
			}
		})
	}
}

func TestCanaryInUsageError(t *testing.T) {
	for _, vars := range []map[string]string{ghEnv(), glEnv(), localEnv()} {
		h := newHarness(t, vars, "--password", canary, "--dry-run", canary)
		code := Main(context.Background(), testTool(), h.env(), func(context.Context, *Job) (map[string]string, error) {
			t.Fatal("run must not be called")
			return nil, nil
		})
		require.Equal(t, ExitUsage, code)
		all := withoutAddMask(h.stdout.String()) + h.stderr.String()
		require.Contains(t, all, "unexpected argument")
		require.NotContains(t, all, "CANARY")
	}
}

func TestMaskMultiLine(t *testing.T) {
	h := newHarness(t, ghEnv())
	j := mustStart(t, testTool(), h)
	h.stdout.Reset()
	secret := "{\n  \"auths\": {\"r\": {\"auth\": \"dXNlcjpwYXNz\"}}\n}\n"
	j.Mask(secret)
	j.Mask("   ")
	j.Mask("")
	require.Equal(t, "::add-mask::\"auths\": {\"r\": {\"auth\": \"dXNlcjpwYXNz\"}}\n", h.stdout.String())
	j.Log.Info("config", "json", secret)
	j.Log.Info(`line "auths": {"r": {"auth": "dXNlcjpwYXNz"}} and {braces} stay`)
	require.NotContains(t, withoutAddMask(h.stdout.String()), "dXNlcjpwYXNz")
	require.Contains(t, h.stdout.String(), "{braces} stay")
}

func TestMaskerForms(t *testing.T) {
	m := &masker{}
	require.Equal(t, []string{"p@ss word/%"}, m.add("p@ss word/%"))
	for _, s := range []string{"p@ss word/%", "p%40ss+word%2F%25", "p@ss%20word%2F%25", "p@ss word/%25"} {
		require.Equal(t, "x"+redacted+"y", m.redact("x"+s+"y"), s)
	}
	require.True(t, m.contains("..p@ss word/%.."))
	require.False(t, m.contains("nothing"))
	// The longest secret wins where two overlap.
	m.add("abcd")
	m.add("abcdef")
	require.Equal(t, redacted+"g", m.redact("abcdefg"))
}

func TestMaskerBase64Forms(t *testing.T) {
	m := &masker{}
	m.add("CANARY-s3cr3t-9f")
	for _, prefix := range []string{"", "u:", "ci:", "x-access-token:", "oauth2:"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			encoded := enc.EncodeToString([]byte(prefix + "CANARY-s3cr3t-9f" + "\n"))
			got := m.redact("value " + encoded + " end")
			require.NotContains(t, got, encoded, prefix)
			require.NotContains(t, got, "CANARY-s3cr3t-9f")
		}
	}
}
