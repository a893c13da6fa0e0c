package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const canary = "CANARY-9d2f-gate-token"

// TestCanaryTokenNeverLeaks: a command that prints a CI token (which the
// platform layer masks) does not get it into the log, the summary, the
// outputs or the report files, on GitHub or GitLab.
func TestCanaryTokenNeverLeaks(t *testing.T) {
	t.Setenv("GATE_CANARY", canary) // what the commands inherit
	for _, platform := range []struct {
		name string
		env  map[string]string
	}{
		{"github", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": canary, "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM"}},
		{"gitlab", map[string]string{"GITLAB_CI": "true", "CI_JOB_TOKEN": canary, "INPUT_JUNIT_REPORT": "gate-reports/junit.xml"}},
	} {
		t.Run(platform.name, func(t *testing.T) {
			dir := project(t)
			env := map[string]string{
				"GITHUB_WORKSPACE": dir, "CI_PROJECT_DIR": dir,
				"INPUT_RUN":   "leak: echo \"token=$GATE_CANARY\"; echo \"rated at $GATE_CANARY/10\"; exit 3",
				"INPUT_SCORE": "rated at (.+)/10", "INPUT_JUNIT": "reports/*.xml",
			}
			for k, v := range platform.env {
				switch v {
				case "OUT", "SUM":
					v = filepath.Join(dir, v)
				}
				env[k] = v
			}
			code, stdout, stderr := invoke(t, dir, nil, env)
			require.Equal(t, 1, code)
			all := stdout + stderr
			require.Contains(t, all, "token=***", "the command ran and its output was redacted")
			require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err == nil {
					all += string(b)
				}
				return err
			}))
			if platform.name == "github" {
				require.Equal(t, 1, strings.Count(stdout, "::add-mask::"+canary+"\n"))
				all = strings.ReplaceAll(all, "::add-mask::"+canary+"\n", "")
			}
			require.NotContains(t, all, canary)
		})
	}
}
