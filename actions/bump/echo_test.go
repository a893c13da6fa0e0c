package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const echoToken = "CANARY-bump-4a7c-token"

// TestEchoedCredentialsNeverLeak: a git server (commit mode) or a forge
// API (pull-request mode, GitHub and GitLab) that echoes the token back —
// Authorization header, Basic pair decoded, GitLab's PRIVATE-TOKEN — gets
// none of it into bump's output, in any encoding. The bump binary runs
// against an HTTPS echo server it trusts through SSL_CERT_FILE.
func TestEchoedCredentialsNeverLeak(t *testing.T) {
	bin := buildBinary(t)
	echo := testrig.EchoServer(t, testrig.EchoOptions{TLS: true})
	repo := echo.URL + "/o/r.git"
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"commit", nil},
		{"pull-request github", []string{"--mode", "pull-request", "--forge", "github", "--api-url", echo.URL + "/api/v3/"}},
		{"pull-request gitlab", []string{"--mode", "pull-request", "--forge", "gitlab", "--api-url", echo.URL + "/api/v4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"--repository", repo, "--branch", "main", "--token", echoToken,
				"--images", "registry.example.com/app=1.2.3", "--author", "ci <ci@example.com>"}, tt.args...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Dir = dir
			cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir, "SSL_CERT_FILE=" + echo.CertFile,
				"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + filepath.Join(dir, "OUT"), "GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "SUM")}
			out, err := cmd.CombinedOutput()
			require.Error(t, err)
			all := string(out)
			for _, f := range []string{"OUT", "SUM"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					all += string(b)
				}
			}
			all = withoutAddMask(all)
			require.Contains(t, all, "you sent", "the echo reached the error, redacted:\n%s", all)
			require.Empty(t, testrig.Leaks(all, []string{"x-access-token"}, echoToken), all)
		})
	}
}

// withoutAddMask drops the ::add-mask:: commands: they register the value
// with the runner, which never shows them.
func withoutAddMask(s string) string {
	var kept []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}
