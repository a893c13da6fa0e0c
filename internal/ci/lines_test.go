package ci

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

func TestLinesKeepsCommas(t *testing.T) {
	tool := spec.Tool{Name: "t", Title: "t", Description: "t", Stage: "test", Inputs: []spec.Input{{Name: "run", Type: spec.Lines, Description: "d"}}}
	j, err := Start(context.Background(), tool, Env{Args: []string{"--run", "a --x=1,2", "--run", " b\n\n c "}})
	require.NoError(t, err)
	require.Equal(t, []string{"a --x=1,2", "b", "c"}, j.Lines("run"))
	per, total := j.AnnotationLimits()
	require.Zero(t, per+total, "no limit outside GitHub")

	j, err = Start(context.Background(), tool, Env{Getenv: func(k string) string {
		return map[string]string{"GITHUB_ACTIONS": "true", "INPUT_RUN": "lint: pylint --disable=C0114,C0115 src\npytest"}[k]
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"lint: pylint --disable=C0114,C0115 src", "pytest"}, j.Lines("run"))
	per, total = j.AnnotationLimits()
	require.Equal(t, [2]int{10, 50}, [2]int{per, total})
}
