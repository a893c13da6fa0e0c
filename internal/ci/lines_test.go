package ci

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

func TestLinesKeepsCommas(t *testing.T) {
	tool := spec.Tool{Name: "t", Title: "t", Description: "t", Stage: "test", Inputs: []spec.Input{{Name: "run", Type: spec.Lines, Description: "d"}}}
	j, err := Start(context.Background(), tool, Env{Args: []string{"--run", "a --x=1,2", "--run", " b\n\n c "}})
	require.NoError(t, err)
	require.Equal(t, []string{"a --x=1,2", "b", "c"}, j.Lines("run"))

	j, err = Start(context.Background(), tool, Env{Getenv: func(k string) string {
		return map[string]string{"GITHUB_ACTIONS": "true", "INPUT_RUN": "lint: pylint --disable=C0114,C0115 src\npytest"}[k]
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"lint: pylint --disable=C0114,C0115 src", "pytest"}, j.Lines("run"))
}

var annotTool = spec.Tool{Name: "t", Title: "t", Description: "t", Stage: "test"}

func TestAnnotateAllKeepsWithinGitHubLimits(t *testing.T) {
	var many []Annotation
	for _, level := range []string{"error", "warning", "notice"} {
		for i := 0; i < 25; i++ {
			many = append(many, Annotation{Level: level, File: "a.go", Line: i + 1, Message: level})
		}
	}
	var out strings.Builder
	j, err := Start(context.Background(), annotTool, Env{Stdout: &out, Getenv: func(k string) string { return map[string]string{"GITHUB_ACTIONS": "true"}[k] }})
	require.NoError(t, err)
	require.Equal(t, 45, j.AnnotateAll(many))
	require.Equal(t, 10, strings.Count(out.String(), "::error file=a.go"))
	require.Equal(t, 10, strings.Count(out.String(), "::warning file=a.go"))
	require.Equal(t, 10, strings.Count(out.String(), "::notice file=a.go"))
	require.Contains(t, out.String(), "15 errors, 15 warnings, 15 notices not shown as annotations")

	out.Reset()
	local, err := Start(context.Background(), annotTool, Env{Stdout: &out, Stderr: &out})
	require.NoError(t, err)
	require.Zero(t, local.AnnotateAll(many))
	require.Empty(t, out.String(), "outside GitHub the tool's own report shows them")
}
