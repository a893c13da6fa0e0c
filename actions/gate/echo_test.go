package main

import (
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestEchoedCredentialsNeverLeak: gate talks to no network itself, but the
// commands it runs do (curl -v, git, docker login): a command that prints
// the CI token in the forms a server echoes it — an Authorization header
// with base64(x-access-token:TOKEN), the pair bare, a URL with the token
// as user information — and a bearer token nobody registered gets none of
// it into gate's log, summary, outputs or report files.
func TestEchoedCredentialsNeverLeak(t *testing.T) {
	const unregistered = "unregistered-bearer-0f3e9a"
	pair := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + canary))
	dir := project(t)
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": canary,
		"GITHUB_OUTPUT": filepath.Join(dir, "OUT"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "SUM"),
		"GITHUB_WORKSPACE": dir, "INPUT_JUNIT": "reports/*.xml",
		"INPUT_RUN": "curl: echo '> Authorization: Basic " + pair + "'; echo '< X-Echo: " + pair + "'; " +
			"echo 'remote: https://x-access-token:" + canary + "@github.com/o/r.git'; " +
			"echo '> Authorization: Bearer " + unregistered + "'; exit 3",
	}
	code, stdout, stderr := invoke(t, dir, nil, env)
	require.Equal(t, 1, code)
	all := stdout + stderr
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
	all = strings.ReplaceAll(all, "::add-mask::"+canary+"\n", "")
	require.Contains(t, all, "Authorization: ***", "the command ran and its output was redacted")
	require.Empty(t, testrig.Leaks(all, []string{"x-access-token"}, canary), all)
	require.NotContains(t, all, unregistered)
}
