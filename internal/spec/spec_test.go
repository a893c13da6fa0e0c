package spec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Tool)
		want   string
	}{
		{name: "tool name", mutate: func(t *Tool) { t.Name = "Fake_Tool" }, want: "kebab-case"},
		{name: "no stage", mutate: func(t *Tool) { t.Stage = "" }, want: "Stage"},
		{name: "input name", mutate: func(t *Tool) { t.Inputs[0].Name = "dry_run" }, want: "kebab-case"},
		{name: "input twice", mutate: func(t *Tool) { t.Inputs[1].Name = t.Inputs[0].Name }, want: "declared twice"},
		{name: "component input", mutate: func(t *Tool) { t.Inputs[0].Name = "job-image" }, want: "collides"},
		{name: "azure parameter", mutate: func(t *Tool) { t.Inputs[0].Name = "hoist-image" }, want: "Azure Pipelines template"},
		{name: "type", mutate: func(t *Tool) { t.Inputs[0].Type = "map" }, want: "unknown type"},
		{name: "description", mutate: func(t *Tool) { t.Inputs[0].Description = "" }, want: "no description"},
		{name: "required with default", mutate: func(t *Tool) { t.Inputs[0].GitLabDefault = "x" }, want: "required and has a default"},
		{name: "boolean default", mutate: func(t *Tool) { t.Inputs[3].Default = "yes" }, want: "boolean default"},
		{name: "number default", mutate: func(t *Tool) { t.Inputs[5].Default = "three" }, want: "not a number"},
		{name: "option default", mutate: func(t *Tool) { t.Inputs[2].Default = "medium" }, want: "not one of"},
		{name: "option without default", mutate: func(t *Tool) { t.Inputs[2].Default = "" }, want: "needs a default"},
		{name: "options on a list", mutate: func(t *Tool) { t.Inputs[1].Options = []string{"a"} }, want: "only for string"},
		{name: "output twice", mutate: func(t *Tool) { t.Outputs[1].Name = "digest" }, want: "declared twice"},
		{name: "output description", mutate: func(t *Tool) { t.Outputs[0].Description = "" }, want: "no description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool := fakeTool()
			require.NoError(t, tool.Validate())
			tt.mutate(&tool)
			require.ErrorContains(t, tool.Validate(), tt.want)
		})
	}
}

func TestEnvNames(t *testing.T) {
	in := Input{Name: "cache-repo"}
	require.Equal(t, "INPUT_CACHE_REPO", in.EnvName())
	require.Equal(t, "INPUT_CACHE-REPO", in.GitHubEnvName())
	require.Equal(t, "BUILD_PUSH_DIGEST", Tool{Name: "build-push"}.DotenvName("digest"))
}
