package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestEchoedCredentialsNeverLeak: a registry that echoes the Authorization
// header back (Basic, or a bearer token it handed out), when retag reads
// the source from it or promotes into it, gets no credential into the
// log, the error, the outputs or the summary, in any encoding.
func TestEchoedCredentialsNeverLeak(t *testing.T) {
	src := testrig.InProcessRegistry(t)
	testrig.PushRandomImage(t, src+"/team/app:abc1234")
	for _, bearer := range []bool{false, true} {
		echo := testrig.EchoServer(t, testrig.EchoOptions{Bearer: bearer})
		for _, tt := range []struct {
			name string
			args []string
		}{
			{"source", []string{"--source", echo.Host + "/team/app:abc1234", "--tags", "v1.0.0"}},
			{"promotion", []string{"--source", src + "/team/app:abc1234", "--destination", echo.Host + "/prod/app", "--tags", "v1.0.0"}},
		} {
			dir := t.TempDir()
			env := map[string]string{
				"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "OUT"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "SUM"),
				"INPUT_USERNAME": "ci", "INPUT_PASSWORD": canary, "INPUT_INSECURE-REGISTRIES": echo.Host + "," + src,
			}
			code, stdout, stderr := invoke(t, tt.args, env)
			require.Equal(t, 1, code, stderr)
			all := stdout + stderr
			for _, f := range []string{"OUT", "SUM"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					all += string(b)
				}
			}
			var kept []string
			for _, l := range strings.Split(all, "\n") {
				if !strings.HasPrefix(l, "::add-mask::") {
					kept = append(kept, l)
				}
			}
			all = strings.Join(kept, "\n")
			require.Contains(t, all, "you sent", "%s: the echo reached the error, redacted", tt.name)
			require.Empty(t, testrig.Leaks(all, []string{"ci"}, canary), "%s bearer=%v:\n%s", tt.name, bearer, all)
			require.NotContains(t, all, echo.Token)
			require.NotContains(t, all, "tags="+echo.Host, "no tags output after a failed run")
		}
	}
}
