package helmrender

import (
	"context"
	"testing"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/stretchr/testify/require"
)

// TestRenderAsHelmTemplate renders testdata/chart as `helm template shop
// testdata/chart -n shop --include-crds --skip-tests --set
// image.tag=1.4.3,redis.enabled=true --output-dir` lays it out: CRDs,
// the enabled subchart, the hook in its file, no test hook, no NOTES.txt.
func TestRenderAsHelmTemplate(t *testing.T) {
	out := t.TempDir()
	err := Render(context.Background(), Request{
		Chart: "testdata/chart", Out: out, Release: "shop", Namespace: "shop",
		Values: map[string]any{"image": map[string]any{"tag": "1.4.3"}, "redis": map[string]any{"enabled": true}},
	})
	require.NoError(t, err)
	golden.Dir(t, "testdata/expected", out)
}

func TestRenderErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		values map[string]any
		chart  string
		want   string
	}{
		{name: "schema", chart: "testdata/chart", values: map[string]any{"replicas": 0}, want: "replicas"},
		{name: "no chart", chart: "testdata/nowhere", want: "loading the chart"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Render(context.Background(), Request{Chart: tt.chart, Out: t.TempDir(), Release: "x", Namespace: "default", Values: tt.values})
			require.ErrorContains(t, err, tt.want)
		})
	}
}
