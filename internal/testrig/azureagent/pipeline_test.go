package azureagent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunPipeline: a Build stage's output variable reaches the Deploy
// stage; a template step's parameters reach its script; secrets reach a
// step only through env: and are masked.
func TestRunPipeline(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lib"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lib", "say.yml"), []byte(`parameters:
- name: word
  type: string
- name: loud
  type: boolean
  default: false
steps:
- ${{ if eq(parameters.loud, true) }}:
  - script: echo "$WORD!" | tr a-z A-Z
    name: say
    env:
      WORD: ${{ parameters.word }}
- ${{ else }}:
  - script: echo "$WORD"
    name: say
    env:
      WORD: ${{ parameters.word }}
`), 0o644))
	pipeline := filepath.Join(dir, "azure-pipelines.yml")
	require.NoError(t, os.WriteFile(pipeline, []byte(`variables:
- group: g
- name: greeting
  value: hello $(Build.SourceBranchName)
stages:
- stage: Build
  jobs:
  - job: build
    steps:
    - checkout: self
    - script: |
        echo "##vso[task.setvariable variable=tag;isOutput=true]app:$(Build.BuildId)"
        echo "secret in env: $TOKEN, not mapped: ${SECRETVALUE:-unset}, public: $PUBLIC"
      name: set
      env:
        TOKEN: $(secretValue)
    - template: lib/say.yml@self
      parameters:
        word: $(greeting)
        loud: true
- stage: Deploy
  condition: and(succeeded(), eq(variables['Build.SourceBranch'], 'refs/heads/main'))
  jobs:
  - job: deploy
    variables:
      tag: $[ stageDependencies.Build.build.outputs['set.tag'] ]
    steps:
    - script: echo "deploying $(tag) / $TAG"
      name: deploy
`), 0o644))
	a := &Agent{
		Repo: dir, Resources: map[string]string{"self": dir}, Temp: t.TempDir(), Env: os.Environ(),
		Groups:     map[string]map[string]Var{"g": {"secretValue": {Value: "s3cr3t", Secret: true}, "public": {Value: "pub"}}},
		Predefined: map[string]string{"Build.SourceBranch": "refs/heads/main", "Build.SourceBranchName": "main", "Build.BuildId": "42"},
	}
	run, err := a.Run(context.Background(), pipeline)
	require.NoError(t, err)
	build := run.Stage("Build").Job("build")
	require.False(t, build.Failed)
	require.Equal(t, map[string]string{"set.tag": "app:42"}, build.Outputs)
	require.Equal(t, "secret in env: ***, not mapped: unset, public: pub", build.Step("set").Outcome.Text())
	require.Equal(t, "HELLO MAIN!", build.Step("say").Outcome.Text())
	deploy := run.Stage("Deploy").Job("deploy")
	require.Equal(t, "deploying app:42 / app:42", deploy.Step("deploy").Outcome.Text())

	a.Predefined["Build.SourceBranch"] = "refs/heads/feature"
	run, err = a.Run(context.Background(), pipeline)
	require.NoError(t, err)
	require.True(t, run.Stage("Deploy").Skipped, "the stage's condition")
}
