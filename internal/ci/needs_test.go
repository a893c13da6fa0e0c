package ci

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/need"
)

// TestPlatformFixes: an error that names what is missing gets the fix of
// the platform the job runs on, and only that one.
func TestPlatformFixes(t *testing.T) {
	missingVar := need.Wrap(need.Variable, "APP_TOKEN", errors.New(`input "secrets": APP_TOKEN is not set`))
	push := need.Wrap(need.RegistryPush, "ghcr.io", errors.New("pushing to ghcr.io/o/app: 401"))
	gitlabPush := need.Wrap(need.RegistryPush, "registry.gitlab.example.com", errors.New("pushing: 401"))
	harborRead := need.Wrap(need.RegistryRead, "harbor.example.com", errors.New("reading: 401"))
	history := need.Wrap(need.History, "main", errors.New("no merge base"))
	env := map[string]string{"CI_REGISTRY": "registry.gitlab.example.com"}
	tests := []struct {
		platform Platform
		err      error
		want     string
	}{
		{PlatformGitHub, missingVar, "env: APP_TOKEN: ${{ secrets.APP_TOKEN }}"},
		{PlatformGitLab, missingVar, "masked CI/CD variable"},
		{PlatformAzure, missingVar, "$(APP_TOKEN)"},
		{PlatformLocal, missingVar, "export APP_TOKEN"},
		{PlatformGitHub, push, "permissions: packages: write"},
		{PlatformGitLab, gitlabPush, "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD apply to registry.gitlab.example.com"},
		{PlatformGitLab, harborRead, "HARBOR_ROBOT_CREDS_JSON"},
		{PlatformGitHub, history, "fetch-depth: 0"},
		{PlatformGitLab, history, "GIT_DEPTH: 0"},
		{PlatformAzure, history, "fetchDepth: 0"},
	}
	others := []string{"GitHub", "GitLab", "Azure"}
	for _, tt := range tests {
		j := &Job{Platform: tt.platform, env: Env{Getenv: func(k string) string { return env[k] }}}
		got := j.Fix(tt.err)
		require.Contains(t, got, tt.want, "%s: %v", tt.platform, tt.err)
		for _, o := range others {
			if string(tt.platform) != map[string]string{"GitHub": "github", "GitLab": "gitlab", "Azure": "azure"}[o] {
				require.NotContains(t, got, "on "+o, "a %s user reads only the %s fix", tt.platform, tt.platform)
			}
		}
	}
	require.Empty(t, (&Job{Platform: PlatformGitHub, env: Env{Getenv: func(string) string { return "" }}}).Fix(errors.New("plain")))
}

func TestRegistryCredential(t *testing.T) {
	vars := map[string]string{"CI_REGISTRY": "registry.gitlab.com", "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "job-token",
		"GITHUB_TOKEN": "gh", "GITHUB_ACTOR": "octocat"}
	j := &Job{env: Env{Getenv: func(k string) string { return vars[k] }}}
	u, p, src, ok := j.RegistryCredential("registry.gitlab.com")
	require.True(t, ok)
	require.Equal(t, []string{"gitlab-ci-token", "job-token", "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"}, []string{u, p, src})
	u, p, src, ok = j.RegistryCredential("ghcr.io")
	require.True(t, ok)
	require.Equal(t, []string{"octocat", "gh", "GITHUB_TOKEN"}, []string{u, p, src})
	_, _, _, ok = j.RegistryCredential("quay.io")
	require.False(t, ok, "no platform credential for other registries")
}

// TestCommandOutput: a command's output reaches the log a line at a time,
// prefixed, masked, and unable to issue GitHub or Azure commands.
func TestCommandOutput(t *testing.T) {
	for _, p := range []Platform{PlatformGitHub, PlatformGitLab, PlatformAzure, PlatformLocal} {
		var log bytes.Buffer
		masks := &masker{}
		masks.add("CANARY-c0mm4nd")
		j := &Job{Platform: p, logs: &console{w: &log, masks: masks, defuse: defuser(p)}}
		w := j.CommandOutput("#7 | ")
		for _, chunk := range []string{"hello ", "world\n::set-output name=x::1\n  ::add-mask::x\n", "echo ##vso[task.setvariable variable=X]1\n##[group]g\nthe CANARY-c0mm4nd\nlast"} {
			_, err := w.Write([]byte(chunk))
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
		got := log.String()
		require.Equal(t, 8-1, strings.Count(got, "#7 | "), "%s: one prefix per line:\n%s", p, got)
		require.Contains(t, got, "#7 | hello world\n")
		require.NotContains(t, got, "::set-output", p)
		require.NotContains(t, got, "::add-mask", p)
		require.NotContains(t, got, "##vso[", p)
		require.NotContains(t, got, "##[group]", p)
		require.NotContains(t, got, "CANARY-c0mm4nd", p)
		require.True(t, strings.HasSuffix(got, "#7 | last\n"), "Close writes the last partial line")
		for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
			require.False(t, strings.HasPrefix(strings.TrimLeft(strings.TrimPrefix(l, "#7 | "), " "), "::"), l)
		}
	}
	// Without a prefix (gate's commands), a line starting with :: is defused too.
	var log bytes.Buffer
	j := &Job{Platform: PlatformGitHub, logs: &console{w: &log, masks: &masker{}}}
	w := j.CommandOutput("")
	_, _ = w.Write([]byte("::error::injected\n"))
	require.NotContains(t, log.String(), "::error::")
}
