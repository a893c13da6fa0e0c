package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
	"github.com/hoist-ci/hoist/internal/testrig/azureagent"
)

// The kaniko-on-agents flow of examples/azure/azure-pipelines.yml, run by
// an emulated Azure Pipelines agent (internal/testrig/azureagent) on this
// machine with hoist's binaries on its PATH: the Build stage packs the
// repository, uploads it with curl --aws-sigv4 to an S3-protocol server
// (gofakes3 behind a Signature Version 4 verifier), and build-push builds
// examples/app from s3://... with the layer cache, pushing to Debian's
// registry with credentials; the Deploy stage reads the image from the
// Build stage's output variables and retags it. The agent's variables are
// the ones the real agent sets; what the tools print is read as the agent
// reads it.
const (
	azRegistryPassword = "CANARY-azure-registry-password"
	azAWSSecret        = "CANARY/azure+aws/secret0123456789"
	azAWSKey           = "AKIAHOISTE2E0000001"
	azRegion           = "eu-west-1"
)

func TestAzurePipelinesKanikoOnAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline against the real registry and built binaries; skipped in -short mode")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	// The agent's tools: hoist's binaries (as an agent image would carry
	// them) and what the pipeline's own script uses.
	bin := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin+string(filepath.Separator), "./actions/build-push", "./actions/retag")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	for _, tool := range []string{"bash", "tar", "curl", "git", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run test/rig/install.sh", tool)
		}
	}

	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": azRegistryPassword}})
	base, err := testrig.BusyboxImage()
	require.NoError(t, err)
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: azRegistryPassword})
	testrig.PushImage(t, base, reg.Host+"/base/busybox:1", auth)
	s3 := testrig.S3(t, testrig.S3Options{AccessKey: azAWSKey, Secret: azAWSSecret, Region: azRegion})
	s3.Bucket(t, "contexts")

	// The application's repository, checked out on main.
	repo := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(repo, "examples", "app"), os.DirFS(filepath.Join(root, "examples", "app"))))
	gitIn(t, repo, "init", "-q", "-b", "main")
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "commit", "-q", "-m", "app")
	sha := gitIn(t, repo, "rev-parse", "HEAD")

	var logs bytes.Buffer
	agent := &azureagent.Agent{
		Repo:      repo,
		Resources: map[string]string{"hoist": root},
		Groups: map[string]map[string]azureagent.Var{"hoist-example": {
			"registry": {Value: reg.Host}, "contextBucket": {Value: "contexts"},
			"appBase": {Value: reg.Host + "/base/busybox:1"}, "insecureRegistries": {Value: reg.Host},
			"registryUser": {Value: "ci"}, "registryPassword": {Value: azRegistryPassword, Secret: true},
			"registryAuth": {Value: `{"auths":{"` + reg.Host + `":{"username":"ci","password":"` + azRegistryPassword + `"}}}`, Secret: true},
			"S3_ENDPOINT":  {Value: s3.URL}, "S3_FORCE_PATH_STYLE": {Value: "true"}, "AWS_REGION": {Value: azRegion},
			"AWS_ACCESS_KEY_ID": {Value: azAWSKey}, "awsSecretAccessKey": {Value: azAWSSecret, Secret: true},
		}},
		Predefined: map[string]string{
			"Build.SourceBranch": "refs/heads/main", "Build.SourceBranchName": "main", "Build.SourceVersion": sha,
			"Build.Reason": "IndividualCI", "Build.BuildId": "1234", "Build.Repository.Uri": "https://dev.azure.com/acme/shop/_git/app",
			"Build.Repository.Name": "app", "System.TeamProject": "shop", "Agent.OS": "Linux",
		},
		Env:  []string{"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8"},
		Temp: t.TempDir(),
		Log:  &logs,
	}
	pipeline := filepath.Join(root, "examples", "azure", "azure-pipelines.yml")
	defer func() {
		if t.Failed() {
			t.Logf("the agent's log:\n%s", tail(logs.String(), 200))
		}
	}()

	run, err := agent.Run(ctx, pipeline)
	require.NoError(t, err)
	buildJob := run.Stage("Build").Job("build")
	require.NotNil(t, buildJob)
	require.False(t, buildJob.Failed, "the Build stage failed")
	upload, bp := buildJob.Steps[1], buildJob.Step("build_push")
	require.Equal(t, 0, upload.ExitCode)
	require.NotEmpty(t, s3.Get(t, "contexts", "main_1234.tar.gz"), "the pipeline uploaded the context")

	// build-push's output variables.
	o := bp.Outcome
	require.Empty(t, o.Failures)
	require.Empty(t, o.Warnings)
	digest := o.Variables["digest"]
	require.True(t, digest.Output && strings.HasPrefix(digest.Value, "sha256:"), "digest: %+v", digest)
	require.Equal(t, azureagent.Variable{Value: reg.Host + "/app@" + digest.Value, Output: true}, o.Variables["image"])
	require.Equal(t, azureagent.Variable{Value: reg.Host + "/app:latest," + reg.Host + "/app:" + sha[:7], Output: true}, o.Variables["tags"],
		"tags from the agent's git context: the short SHA, latest on the default branch")
	var md map[string]any
	require.NoError(t, json.Unmarshal([]byte(o.Variables["metadata"].Value), &md))
	require.EqualValues(t, 0, md["layers.cached"], "a cold cache")
	for _, tag := range []string{"latest", sha[:7]} {
		ref, err := name.ParseReference(reg.Host+"/app:"+tag, name.Insecure)
		require.NoError(t, err)
		desc, err := remote.Head(ref, auth)
		require.NoError(t, err)
		require.Equal(t, digest.Value, desc.Digest.String())
	}

	// Secrets: registered before anything else, written nowhere.
	require.Subset(t, o.Secrets, []string{azAWSSecret})
	require.Contains(t, strings.Join(o.Secrets, "\n"), azRegistryPassword, "the Docker config JSON holding it")
	require.Empty(t, o.CommandBeforeSecret, "a command came before the secrets were registered")
	requireSecretsOnlyRegistered(t, run, azRegistryPassword, azAWSSecret)

	// Annotations: the app's optional secret was not given — a warning of
	// the step; the summary is uploaded; every log group is closed.
	require.Len(t, o.Issues, 1, "%+v", o.Issues)
	require.Equal(t, "warning", o.Issues[0].Type)
	require.Contains(t, o.Issues[0].Message, "RUN --mount=type=secret: no such secret given")
	require.Len(t, o.Summaries, 1)
	for path, content := range o.Summaries {
		require.True(t, strings.HasPrefix(path, filepath.Join(agent.Temp)), path)
		require.Contains(t, content, digest.Value)
	}
	require.Zero(t, o.Open)

	// Deploy: the built image, read from the Build stage's outputs.
	deploy := run.Stage("Deploy").Job("deploy")
	require.NotNil(t, deploy)
	require.False(t, deploy.Failed)
	rt := deploy.Step("retag").Outcome
	require.Equal(t, azureagent.Variable{Value: digest.Value, Output: true}, rt.Variables["digest"])
	require.Equal(t, azureagent.Variable{Value: reg.Host + "/app:staging", Output: true}, rt.Variables["tags"])
	require.Subset(t, rt.Secrets, []string{azRegistryPassword})
	ref, err := name.ParseReference(reg.Host+"/app:staging", name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(ref, auth)
	require.NoError(t, err)
	require.Equal(t, digest.Value, desc.Digest.String())
	shown := deploy.Steps[len(deploy.Steps)-1].Outcome.Text()
	require.Equal(t, "deploying "+reg.Host+"/app@"+digest.Value+", built as "+o.Variables["tags"].Value+", now "+reg.Host+"/app:staging", shown)

	// The next build of the same commit takes every layer from the cache.
	agent.Predefined["Build.BuildId"] = "1235"
	run, err = agent.Run(ctx, pipeline)
	require.NoError(t, err)
	warm := run.Stage("Build").Job("build").Step("build_push").Outcome
	require.Empty(t, warm.Failures)
	require.NoError(t, json.Unmarshal([]byte(warm.Variables["metadata"].Value), &md))
	require.EqualValues(t, 0, md["layers.built"], "a warm cache builds nothing")
	require.NotZero(t, md["layers.cached"])
	require.False(t, run.Stage("Deploy").Job("deploy").Failed)

	// A broken Dockerfile on main: the build fails with an error issue, and
	// the Deploy stage does not run.
	require.NoError(t, os.WriteFile(filepath.Join(repo, "examples", "app", "Dockerfile"), []byte("ARG BASE\nFROM $BASE\nCOPY missing/ /srv/\n"), 0o644))
	gitIn(t, repo, "commit", "-q", "-am", "broken")
	agent.Predefined["Build.SourceVersion"] = gitIn(t, repo, "rev-parse", "HEAD")
	agent.Predefined["Build.BuildId"] = "1236"
	run, err = agent.Run(ctx, pipeline)
	require.NoError(t, err)
	failed := run.Stage("Build").Job("build").Step("build_push")
	require.True(t, failed.Failed)
	require.Equal(t, 1, failed.ExitCode)
	var errs []azureagent.Issue
	for _, is := range failed.Outcome.Issues {
		if is.Type == "error" {
			errs = append(errs, is)
		}
	}
	require.Len(t, errs, 1, "%+v", failed.Outcome.Issues)
	require.Contains(t, errs[0].Message, "missing")
	require.True(t, run.Stage("Deploy").Skipped, "Deploy runs only after a successful Build")
	requireSecretsOnlyRegistered(t, run, azRegistryPassword, azAWSSecret)
}

// requireSecretsOnlyRegistered checks every step's raw output: a secret
// appears only in task.setsecret commands — in no log line, issue,
// variable or summary.
func requireSecretsOnlyRegistered(t *testing.T, run *azureagent.Run, secrets ...string) {
	t.Helper()
	for _, st := range run.Stages {
		for _, j := range st.Jobs {
			for _, s := range j.Steps {
				if s.Outcome == nil {
					continue
				}
				for _, line := range strings.Split(s.Outcome.Raw, "\n") {
					if strings.HasPrefix(line, "##vso[task.setsecret]") {
						continue
					}
					for _, secret := range secrets {
						require.NotContains(t, line, secret, "step %s of %s", s.Name, j.Name)
					}
				}
				for _, content := range s.Outcome.Summaries {
					for _, secret := range secrets {
						require.NotContains(t, content, secret)
					}
				}
			}
		}
	}
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.com", "GIT_COMMITTER_NAME=ci",
		"GIT_COMMITTER_EMAIL=ci@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s:\n%s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// TestAzureTemplateHoistImage runs the step template with hoist-image on an
// agent whose `docker` records how it was called: the tool runs in the
// image with the workspace and the agent's temporary directory mounted at
// the same paths, and the variables it reads passed by name — a secret's
// value never reaches the command line.
func TestAzureTemplateHoistImage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	bin, repo := t.TempDir(), t.TempDir()
	record := filepath.Join(t.TempDir(), "docker-call")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/bash\n"+
		"printf '%s\\n' \"$@\" > "+record+"\n"+
		"env | sort >> "+record+".env\n"+
		"echo '##vso[task.setvariable variable=digest;isOutput=true]sha256:fromthecontainer'\n"), 0o755))
	pipeline := filepath.Join(t.TempDir(), "azure-pipelines.yml")
	require.NoError(t, os.WriteFile(pipeline, []byte(`variables:
- group: g
stages:
- stage: Build
  jobs:
  - job: build
    steps:
    - template: templates/azure/retag.yml@hoist
      parameters:
        hoist-image: `+spec.Image()+`
        source: registry.example.com/app:1
        tags: staging
        password: $(registryPassword)
        env:
          AWS_SECRET_ACCESS_KEY: $(awsSecret)
          UNRELATED: x
`), 0o644))
	agent := &azureagent.Agent{
		Repo: repo, Resources: map[string]string{"hoist": root}, Temp: t.TempDir(),
		Groups: map[string]map[string]azureagent.Var{"g": {
			"registryPassword": {Value: "CANARY-docker-mode-password", Secret: true},
			"awsSecret":        {Value: "CANARY-docker-mode-aws", Secret: true},
		}},
		Predefined: map[string]string{"Build.SourceBranch": "refs/heads/main", "Build.Reason": "Manual"},
		Env:        []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir()},
	}
	run, err := agent.Run(t.Context(), pipeline)
	require.NoError(t, err)
	step := run.Stage("Build").Job("build").Step("retag")
	require.Equal(t, 0, step.ExitCode, step.Outcome.Raw)
	require.Equal(t, "sha256:fromthecontainer", step.Outcome.Variables["digest"].Value, "the container's logging commands reach the agent")

	b, err := os.ReadFile(record)
	require.NoError(t, err)
	args := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Equal(t, []string{"run", "--rm", "--network", "host"}, args[:4])
	joined := strings.Join(args, " ")
	require.Contains(t, joined, "--volume "+repo+":"+repo)
	require.Contains(t, joined, "--workdir "+repo)
	require.Regexp(t, `--volume (\S+/_temp):(\S+/_temp) `, joined, "the agent's temporary directory (summaries) at the same path")
	require.Contains(t, joined, "--entrypoint /usr/local/bin/retag "+spec.Image())
	for _, name := range []string{"INPUT_SOURCE", "INPUT_TAGS", "INPUT_PASSWORD", "TF_BUILD", "BUILD_SOURCEBRANCH", "BUILD_REASON", "AGENT_TEMPDIRECTORY", "AWS_SECRET_ACCESS_KEY"} {
		require.Contains(t, args, name, "passes %s", name)
	}
	require.NotContains(t, args, "UNRELATED", "only what hoist reads")
	require.NotContains(t, joined, "CANARY", "values never on the command line")
	env, err := os.ReadFile(record + ".env")
	require.NoError(t, err)
	require.Contains(t, string(env), "INPUT_PASSWORD=CANARY-docker-mode-password\n", "docker reads the values from its environment")
}
