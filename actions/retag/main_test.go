package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/command/retag"
	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const canary = "CANARY-5b1e-retag-password"

// invoke runs the retag binary's whole path — inputs, registry, component,
// outputs — in process, on the given platform environment.
func invoke(t *testing.T, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = ci.Main(context.Background(), spec.Retag(), ci.Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdout: &out,
		Stderr: &errb,
		Dir:    t.TempDir(),
	}, retag.Run)
	return code, out.String(), errb.String()
}

func TestCanaryPasswordNeverLeaks(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "right-password"}})
	repo := reg.Host + "/team/app"
	testrig.PushRandomImage(t, repo+":abc1234", remote.WithAuth(reg.Auth()))

	for _, platform := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"cli", map[string]string{}, []string{"--source", repo + ":abc1234", "--tags", "v1.0.0", "--username", "ci", "--password", canary, "--insecure-registries", reg.Host}},
		{"github", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "OUT", "GITHUB_STEP_SUMMARY": "SUM",
			"INPUT_SOURCE": repo + ":abc1234", "INPUT_TAGS": "v1.0.0", "INPUT_USERNAME": "ci", "INPUT_PASSWORD": canary, "INPUT_INSECURE-REGISTRIES": reg.Host,
		}, nil},
		{"gitlab", map[string]string{
			"GITLAB_CI": "true", "CI_PROJECT_DIR": "DIR",
			"INPUT_SOURCE": repo + ":abc1234", "INPUT_TAGS": "v1.0.0", "INPUT_USERNAME": "ci", "INPUT_PASSWORD": canary, "INPUT_INSECURE_REGISTRIES": reg.Host,
		}, nil},
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
			code, stdout, stderr := invoke(t, platform.args, platform.env)
			require.Equal(t, 1, code)
			all := stdout + stderr
			for _, f := range []string{"OUT", "SUM", "retag.env"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					all += string(b)
				}
			}
			if platform.name == "github" {
				require.Equal(t, 1, strings.Count(stdout, "::add-mask::"+canary+"\n"), "GitHub is told once to mask it")
				all = strings.ReplaceAll(all, "::add-mask::"+canary+"\n", "")
			}
			require.NotContains(t, all, canary)
			require.Contains(t, all, "were refused", "the error says the credentials were refused")
		})
	}
}

func TestCLIExampleFromTheIssue(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{})
	repo := reg.Host + "/app"
	desc := testrig.PushRandomImage(t, repo+":abc1234")

	code, stdout, stderr := invoke(t, []string{"--source", repo + ":abc1234", "--tags", "v1.4.2", "--insecure-registries", reg.Host, "--dry-run", "true"}, nil)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "digest="+desc.Digest.String())
	tags, err := remote.List(mustRepo(t, repo))
	require.NoError(t, err)
	require.Equal(t, []string{"abc1234"}, tags, "a dry run writes nothing")

	code, stdout, stderr = invoke(t, []string{"--source", repo + ":abc1234", "--tags", "v1.4.2", "--insecure-registries", reg.Host}, nil)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "tags="+repo+":v1.4.2,"+repo+":1.4.2,"+repo+":1.4,"+repo+":1")
	for _, tag := range []string{"v1.4.2", "1.4.2", "1.4", "1"} {
		d, err := remote.Head(mustRepo(t, repo).Tag(tag), remote.WithAuth(authn.Anonymous))
		require.NoError(t, err)
		require.Equal(t, desc.Digest, d.Digest, tag)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	code, _, stderr := invoke(t, []string{"--tagz", "x"}, nil)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "did you mean --tags")
	code, _, stderr = invoke(t, []string{"--source", "r/app:x", "--tags", "1", "--dry-run", "yes"}, nil)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--dry-run")
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s, name.Insecure)
	require.NoError(t, err)
	return r
}
