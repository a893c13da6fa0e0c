package ci

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want Platform
	}{
		{ghEnv(), PlatformGitHub},
		{glEnv(), PlatformGitLab},
		{localEnv(), PlatformLocal},
		{localEnv("GITHUB_ACTIONS", "false", "GITLAB_CI", "1"), PlatformLocal},
		{ghEnv("GITLAB_CI", "true"), PlatformGitHub},
		{localEnv("GITLAB_CI", "false", "CI_JOB_ID", "7", "CI_PROJECT_DIR", "/builds/g/p"), PlatformGitLab}, // gitlab-ci-local
		{localEnv("GITLAB_CI", "false"), PlatformLocal},
		{azEnv(), PlatformAzure},
		{localEnv("TF_BUILD", "true"), PlatformAzure},
		{localEnv("TF_BUILD", "False"), PlatformLocal},
		{azEnv("GITHUB_ACTIONS", "true"), PlatformGitHub},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Detect(func(k string) string { return tt.vars[k] }), "%v", tt.vars)
	}
}

func TestInputPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		vars   map[string]string
		args   []string
		input  string
		want   string
		source string
	}{
		{"default", localEnv(), nil, "latest", "auto", "default"},
		{"unset", localEnv(), nil, "source", "", ""},
		{"flag", localEnv(), []string{"--latest", "true"}, "latest", "true", "--latest"},
		{"flag=value", localEnv(), []string{"--latest=false"}, "latest", "false", "--latest"},
		{"local env", localEnv("INPUT_DRY_RUN", "true"), nil, "dry-run", "true", "INPUT_DRY_RUN"},
		{"flag beats local env", localEnv("INPUT_DRY_RUN", "true"), []string{"--dry-run=false"}, "dry-run", "false", "--dry-run"},
		{"local ignores hyphen env", localEnv("INPUT_DRY-RUN", "true"), nil, "dry-run", "false", "default"},

		{"github env keeps hyphens", ghEnv("INPUT_DRY-RUN", "true"), nil, "dry-run", "true", "INPUT_DRY-RUN"},
		{"github ignores snake env", ghEnv("INPUT_DRY_RUN", "true"), nil, "dry-run", "false", "default"},
		{"github empty is unset", ghEnv("INPUT_LATEST", ""), nil, "latest", "auto", "default"},
		{"github trims", ghEnv("INPUT_SOURCE", "  app:1 \n"), nil, "source", "app:1", "INPUT_SOURCE"},
		{"github flag beats env", ghEnv("INPUT_SOURCE", "env:1"), []string{"--source", "flag:1"}, "source", "flag:1", "--source"},

		{"gitlab snake env", glEnv("INPUT_SEMVER_ALIASES", "false"), nil, "semver-aliases", "false", "INPUT_SEMVER_ALIASES"},
		{"gitlab ignores hyphen env", glEnv("INPUT_SEMVER-ALIASES", "false"), nil, "semver-aliases", "true", "default"},
		{"gitlab empty is unset", glEnv("INPUT_RETRIES", ""), nil, "retries", "3", "default"},
		{"gitlab flag beats env", glEnv("INPUT_RETRIES", "5"), []string{"--retries", "9"}, "retries", "9", "--retries"},
		{"empty flag is unset", glEnv("INPUT_RETRIES", "5"), []string{"--retries="}, "retries", "5", "INPUT_RETRIES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustStart(t, testTool(), newHarness(t, tt.vars, tt.args...))
			require.Equal(t, tt.want, j.String(tt.input))
			require.Equal(t, tt.source, j.Source(tt.input))
			require.Equal(t, tt.source != "", j.Set(tt.input))
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    map[string][]string
		wantErr string
	}{
		{"space", []string{"--source", "a:1"}, map[string][]string{"source": {"a:1"}}, ""},
		{"equals", []string{"--source=a:1=b"}, map[string][]string{"source": {"a:1=b"}}, ""},
		{"bare bool", []string{"--dry-run"}, map[string][]string{"dry-run": {"true"}}, ""},
		{"bool literal", []string{"--dry-run", "false", "--source", "x"}, map[string][]string{"dry-run": {"false"}, "source": {"x"}}, ""},
		{"bool literal TRUE", []string{"--dry-run", "TRUE"}, map[string][]string{"dry-run": {"TRUE"}}, ""},
		{"bare bool then flag", []string{"--dry-run", "--source", "x"}, map[string][]string{"dry-run": {"true"}, "source": {"x"}}, ""},
		{"bool equals", []string{"--dry-run=yes"}, map[string][]string{"dry-run": {"yes"}}, ""},
		{"list repeats", []string{"--tags", "a", "--tags=b,c"}, map[string][]string{"tags": {"a", "b,c"}}, ""},
		{"alias", []string{"--destination", "r/x:1", "--tags", "y"}, map[string][]string{"tags": {"r/x:1", "y"}}, ""},
		{"scalar last wins", []string{"--source", "a", "--source", "b"}, map[string][]string{"source": {"b"}}, ""},
		{"value starting with dash", []string{"--retries", "-1"}, map[string][]string{"retries": {"-1"}}, ""},
		{"terminator", []string{"--source", "a", "--"}, map[string][]string{"source": {"a"}}, ""},

		{"unknown close", []string{"--sorce", "x"}, nil, "unknown flag --sorce: did you mean --source?"},
		{"unknown prefix", []string{"--dry"}, nil, "unknown flag --dry: did you mean --dry-run?"},
		{"unknown far", []string{"--zzzzzzzzzzzz"}, nil, "unknown flag --zzzzzzzzzzzz (the closest is --"},
		{"unknown hides value", []string{"--pasword=hunter2"}, nil, "unknown flag --pasword: did you mean --password?"},
		{"single dash", []string{"-source", "x"}, nil, "unknown flag -source: did you mean --source?"},
		{"stray", []string{"extra"}, nil, `unexpected argument "extra": demo-tool takes flags only (--name value)`},
		{"stray input name", []string{"source"}, nil, `unexpected argument "source": demo-tool takes flags only; did you mean --source?`},
		{"stray after bool", []string{"--dry-run", "yes"}, nil, `unexpected argument "yes" after --dry-run: a boolean flag takes true or false (--dry-run=false)`},
		{"after terminator", []string{"--", "x"}, nil, `unexpected argument "x"`},
		{"missing value", []string{"--source"}, nil, "flag --source needs a value: --source VALUE or --source=VALUE"},
		{"flag as value", []string{"--source", "--tags", "x"}, nil, "flag --source needs a value but is followed by the flag --tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(testTool(), tt.args)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.values)
		})
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{" a , b ,, ", []string{"a", "b"}},
		{"a\nb\r\nc", []string{"a", "b", "c"}},
		{"a,\n\n b \n", []string{"a", "b"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, SplitList(tt.in), "%q", tt.in)
	}
}

func TestTypedInputs(t *testing.T) {
	h := newHarness(t, glEnv("INPUT_TAGS", "v1, v2\nv3", "INPUT_RETRIES", "7"), "--dry-run", "--platforms", "linux/amd64", "--platforms", "linux/arm64")
	j := mustStart(t, testTool(), h)
	b, err := j.Bool("dry-run")
	require.NoError(t, err)
	require.True(t, b)
	b, err = j.Bool("semver-aliases")
	require.NoError(t, err)
	require.True(t, b)
	n, err := j.Int("retries")
	require.NoError(t, err)
	require.Equal(t, 7, n)
	require.Equal(t, []string{"v1", "v2", "v3"}, j.List("tags"))
	require.Equal(t, []string{"linux/amd64", "linux/arm64"}, j.List("platforms"))
	require.Equal(t, "linux/amd64,linux/arm64", j.String("platforms"))
	require.Empty(t, j.List("source"))
	n, err = j.Int("short-sha-length")
	require.NoError(t, err)
	require.Zero(t, n)
	require.Panics(t, func() { j.String("no-such-input") })
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{"bool flag", localEnv(), []string{"--dry-run=yes"}, []string{`input dry-run: "yes" is not a boolean: use true or false (set by --dry-run)`}},
		{"bool github env", ghEnv("INPUT_DRY-RUN", "yes"), nil, []string{`input dry-run: "yes" is not a boolean: use true or false (set by INPUT_DRY-RUN)`}},
		{"number", glEnv("INPUT_RETRIES", "three"), nil, []string{`input retries: "three" is not a number: use a number such as 8 or 8.5 (set by INPUT_RETRIES)`}},
		{"option", localEnv(), []string{"--latest", "maybe"}, []string{`input latest: "maybe" is not allowed: use one of auto, true, false (set by --latest)`}},
		{"list option", localEnv(), []string{"--platforms", "linux/amd64,windows/amd64"}, []string{`input platforms: "windows/amd64" is not allowed: use one of linux/amd64, linux/arm64`}},
		{"short sha range", localEnv(), []string{"--short-sha-length", "2"}, []string{"input short-sha-length: 2 is out of range: use a length from 4 to 64"}},
		{"short sha fraction", localEnv(), []string{"--short-sha-length", "7.5"}, []string{`input short-sha-length: "7.5" is not a whole number`}},
		{"several at once", localEnv(), []string{"--dry-run=maybe", "--latest=never"}, []string{`input dry-run: "maybe"`, `input latest: "never"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(context.Background(), testTool(), newHarness(t, tt.vars, tt.args...).env())
			var ue *UsageError
			require.ErrorAs(t, err, &ue)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestSecretValueNotInValidationError(t *testing.T) {
	tool := testTool()
	for i := range tool.Inputs {
		if tool.Inputs[i].Name == "password" {
			tool.Inputs[i].Options = []string{"a", "b"}
		}
	}
	_, err := Start(context.Background(), tool, newHarness(t, localEnv(), "--password", "CANARY-s3cret").env())
	require.ErrorContains(t, err, "input password: the secret value is not allowed")
	require.NotContains(t, err.Error(), "CANARY")
}

func TestRequired(t *testing.T) {
	const want = "input \"target\" is not set: pass --target on the CLI, `with: target:` in a GitHub workflow, `inputs: target:` on the GitLab component (job variable INPUT_TARGET), or `parameters: target:` on the Azure Pipelines template"
	_, err := Start(context.Background(), requiredTool(), newHarness(t, localEnv()).env())
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	lines := strings.Split(err.Error(), "\n")
	require.Equal(t, []string{
		want,
		"input \"cache-repo\" is not set: pass --cache-repo on the CLI, `with: cache-repo:` in a GitHub workflow, `inputs: cache-repo:` on the GitLab component (job variable INPUT_CACHE_REPO), or `parameters: cache-repo:` on the Azure Pipelines template",
	}, lines)

	// Job.Required, for inputs required only in some modes.
	j := mustStart(t, testTool(), newHarness(t, localEnv()))
	_, err = j.Required("source")
	require.EqualError(t, err, "input \"source\" is not set: pass --source on the CLI, `with: source:` in a GitHub workflow, `inputs: source:` on the GitLab component (job variable INPUT_SOURCE), or `parameters: source:` on the Azure Pipelines template")
	v, err := j.Required("latest")
	require.NoError(t, err)
	require.Equal(t, "auto", v)

	// Set through each surface.
	for _, vars := range []map[string]string{
		ghEnv("INPUT_TARGET", "x", "INPUT_CACHE-REPO", "c"),
		glEnv("INPUT_TARGET", "x", "INPUT_CACHE_REPO", "c"),
	} {
		j := mustStart(t, requiredTool(), newHarness(t, vars))
		v, err := j.Required("cache-repo")
		require.NoError(t, err)
		require.Equal(t, "c", v)
	}
}

func TestMainExitCodes(t *testing.T) {
	ok := func(context.Context, *Job) (map[string]string, error) { return nil, nil }
	fail := func(context.Context, *Job) (map[string]string, error) { return nil, errors.New("pushing r:1: denied") }
	tests := []struct {
		name       string
		args       []string
		run        func(context.Context, *Job) (map[string]string, error)
		code       int
		wantStderr string
	}{
		{"ok", nil, ok, ExitOK, ""},
		{"help", []string{"--source", "x", "-h"}, ok, ExitOK, ""},
		{"version", []string{"--version"}, ok, ExitOK, ""},
		{"usage", []string{"--nope"}, ok, ExitUsage, "error: unknown flag --nope"},
		{"bad value", []string{"--retries", "x"}, ok, ExitUsage, `error: input retries: "x" is not a number`},
		{"run error", nil, fail, ExitError, "error: pushing r:1: denied\n"},
		{"panic", nil, func(context.Context, *Job) (map[string]string, error) { panic("boom") }, ExitError, "error: internal error in demo-tool: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, localEnv(), tt.args...)
			code := Main(context.Background(), testTool(), h.env(), tt.run)
			require.Equal(t, tt.code, code, "stderr: %s", h.stderr.String())
			if tt.wantStderr != "" {
				require.Contains(t, h.stderr.String(), tt.wantStderr)
			}
			if tt.code == ExitUsage {
				require.Contains(t, h.stderr.String(), "run 'demo-tool --help' for the flags")
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	h := newHarness(t, localEnv(), "--help")
	_, err := Start(context.Background(), spec.Retag(), h.env())
	require.ErrorIs(t, err, ErrHelp)
	for _, in := range spec.Retag().Inputs { // the text follows the spec
		require.Contains(t, h.stdout.String(), "  --"+in.Name+" ")
		require.Contains(t, h.stdout.String(), "("+in.EnvName()+")")
	}

	h = newHarness(t, localEnv(), "--help")
	_, err = Start(context.Background(), testTool(), h.env())
	require.ErrorIs(t, err, ErrHelp)
	// The golden file names the version <version>: a release does not change it.
	goldenFile(t, "help-demo-tool.txt", strings.Replace(h.stdout.String(), " "+spec.BinaryVersion()+":", " <version>:", 1))

	h = newHarness(t, localEnv(), "--version")
	_, err = Start(context.Background(), testTool(), h.env())
	require.ErrorIs(t, err, ErrHelp)
	require.Equal(t, spec.BinaryVersion()+"\n", h.stdout.String())
}

func TestMainCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newHarness(t, glEnv())
	code := Main(ctx, testTool(), h.env(), func(ctx context.Context, _ *Job) (map[string]string, error) {
		cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	require.Equal(t, ExitError, code)
	require.Contains(t, h.stdout.String(), "error: demo-tool interrupted (SIGINT/SIGTERM) before it finished: context canceled")
}

func TestWorkspaceAndDefaultImage(t *testing.T) {
	tests := []struct {
		name      string
		vars      map[string]string
		workspace string // "" means the harness dir
		image     string
	}{
		{"github", ghEnv("GITHUB_WORKSPACE", "/act/ws", "GITHUB_REPOSITORY", "Octo-Org/App", "CI_PROJECT_DIR", "/x"), "/act/ws", "ghcr.io/octo-org/app"},
		{"github no workspace", ghEnv(), "", ""},
		{"gitlab", glEnv("CI_PROJECT_DIR", "/builds/g/p", "CI_REGISTRY_IMAGE", "registry.gitlab.com/g/p", "GITHUB_WORKSPACE", "/x"), "/builds/g/p", "registry.gitlab.com/g/p"},
		{"local", localEnv("GITHUB_WORKSPACE", "/x", "CI_PROJECT_DIR", "/y", "CI_REGISTRY_IMAGE", "r/x"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.vars)
			j := mustStart(t, testTool(), h)
			want := tt.workspace
			if want == "" {
				want = h.dir
			}
			require.Equal(t, want, j.Workspace())
			require.Equal(t, tt.image, j.DefaultImage())
			require.Equal(t, tt.vars["CI_PROJECT_DIR"], j.Getenv("CI_PROJECT_DIR"))
		})
	}
}

func TestRequestTagPrefix(t *testing.T) {
	for vars, want := range map[string]string{"GITHUB_ACTIONS": "pr", "GITLAB_CI": "mr", "": "pr"} {
		j, err := Start(context.Background(), annotTool, Env{Getenv: func(k string) string {
			if k == vars {
				return "true"
			}
			return ""
		}})
		require.NoError(t, err)
		require.Equal(t, want, j.RequestTagPrefix(), vars)
	}
}

func TestRequiredVariablesFailFastAndAreMasked(t *testing.T) {
	tool := spec.Tool{Name: "t", Title: "t", Description: "t", Stage: "build", Inputs: []spec.Input{
		{Name: RequiredVariablesInput, Type: spec.List, Description: "d"},
	}}
	env := map[string]string{"GITLAB_CI": "true", "INPUT_REQUIRED_VARIABLES": "HARBOR_ROBOT_CREDS_JSON, DEPLOY_TOKEN"}
	var out bytes.Buffer
	code := Main(context.Background(), tool, Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out},
		func(context.Context, *Job) (map[string]string, error) {
			t.Fatal("the run must not start")
			return nil, nil
		})
	require.Equal(t, ExitUsage, code)
	require.Contains(t, out.String(), "HARBOR_ROBOT_CREDS_JSON, DEPLOY_TOKEN are not set, and this pipeline requires them (input required-variables)")

	env["HARBOR_ROBOT_CREDS_JSON"] = `{"auths":{"harbor.example.com":{"auth":"CANARY-harbor"}}}`
	env["DEPLOY_TOKEN"] = "CANARY-deploy-token"
	out.Reset()
	code = Main(context.Background(), tool, Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out},
		func(_ context.Context, j *Job) (map[string]string, error) {
			j.Log.Info("token is " + env["DEPLOY_TOKEN"])
			return nil, nil
		})
	require.Equal(t, ExitOK, code)
	require.NotContains(t, out.String(), "CANARY-deploy-token")
	require.Contains(t, out.String(), "token is ***")
}

func TestPrintIsMaskedAndAPIURL(t *testing.T) {
	tool := spec.Tool{Name: "t", Title: "t", Description: "t", Stage: "test", Inputs: []spec.Input{{Name: "token", Type: spec.String, Secret: true, Description: "d"}}}
	var stdout, stderr bytes.Buffer
	j, err := Start(context.Background(), tool, Env{Args: []string{"--token", "CANARY-print"}, Stdout: &stdout, Stderr: &stderr})
	require.NoError(t, err)
	j.Print("--- a/x\n+++ b/x\n+token: CANARY-print\n")
	require.Empty(t, stdout.String(), "locally stdout is for outputs")
	require.Contains(t, stderr.String(), "+token: ***\n")
	require.Empty(t, j.APIURLFor(""))

	tests := []struct{ env, repo, want string }{
		{"GITHUB_ACTIONS=true", "", "https://api.github.com"},
		{"GITHUB_ACTIONS=true", "https://github.com/acme/gitops.git", "https://api.github.com"},
		{"GITHUB_ACTIONS=true GITHUB_SERVER_URL=https://ghe.example.com GITHUB_API_URL=https://ghe.example.com/api/v3", "git@ghe.example.com:acme/gitops.git", "https://ghe.example.com/api/v3"},
		{"GITHUB_ACTIONS=true", "https://gitlab.com/acme/gitops.git", ""},
		{"GITLAB_CI=true CI_SERVER_URL=https://gitlab.example.com CI_API_V4_URL=https://gitlab.example.com/api/v4", "https://gitlab.example.com/acme/gitops.git", "https://gitlab.example.com/api/v4"},
		{"GITLAB_CI=true CI_SERVER_URL=https://gitlab.example.com CI_API_V4_URL=https://gitlab.example.com/api/v4", "https://github.com/acme/gitops.git", ""},
	}
	for _, tt := range tests {
		vars := map[string]string{}
		for _, kv := range strings.Fields(tt.env) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		j, err := Start(context.Background(), tool, Env{Getenv: func(k string) string { return vars[k] }})
		require.NoError(t, err)
		require.Equal(t, tt.want, j.APIURLFor(tt.repo), "%s %s", tt.env, tt.repo)
	}
}
