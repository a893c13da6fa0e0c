package publish_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/components/publish"
)

var chart = map[string]string{
	"chart/Chart.yaml":                "apiVersion: v2\nname: app\nversion: 0.3.0\n",
	"chart/values.yaml":               "image:\n  repository: registry.example.com/app\n  tag: 1.0.0\nreplicas: 1\n",
	"chart/templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
	"env/prod.yaml":                   "replicas: 3\nimage:\n  tag: 1.4.0\ningress:\n  hosts: [a.example.com]\n",
	"env/db.yaml":                     "database:\n  url: postgres://db.internal/app\nimage:\n  pullPolicy: Always\n",
}

// fakeHelm records the request and writes one manifest.
type fakeHelm struct{ got publish.HelmRequest }

func (f *fakeHelm) RenderChart(_ context.Context, req publish.HelmRequest) error {
	f.got = req
	p := filepath.Join(req.Out, "app", "templates", "deployment.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte("---\n# Source: app/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: "+req.Release+"\n"), 0o644)
}

func TestHelmValuesAndSet(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, chart)
	h := &fakeHelm{}
	o := e.opts(dir, git(sha1, "main"), "team/cfg:v1")
	o.Path, o.Render, o.Helm = "chart", publish.RenderHelm, h
	o.Values = []string{"env/prod.yaml", "env/db.yaml"}
	o.Set = []string{"image.tag=1.4.2", "ingress.hosts[1]=b.example.com,replicas=5", "feature.enabled=true"}
	o.Namespace = "shop"
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, "app", h.got.Release)
	require.Equal(t, "shop", h.got.Namespace)
	require.Equal(t, map[string]any{
		"replicas": int64(5),
		"image":    map[string]any{"tag": "1.4.2", "pullPolicy": "Always"},
		"ingress":  map[string]any{"hosts": []any{"a.example.com", "b.example.com"}},
		"database": map[string]any{"url": "postgres://db.internal/app"},
		"feature":  map[string]any{"enabled": true},
	}, h.got.Values)
	require.Equal(t, []string{"app/templates/deployment.yaml"}, keys(pull(t, res.Image)))

	o.Set = []string{"image.tag"}
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, `input "set": "image.tag"`)
	o.Set, o.Values = nil, []string{"env/missing.yaml"}
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, `input "values"`)
	o.Values, o.Helm = nil, nil
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, "publish-helm")
}

// TestHelmRelease: helm-output helmrelease keeps the chart as it is and
// writes a HelmRelease carrying the merged values, and a kustomization
// that applies only the HelmRelease.
func TestHelmRelease(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, chart)
	o := e.opts(dir, git(sha1, "main"), "team/cfg:v1")
	o.Path, o.Render, o.HelmOutput = "chart", publish.RenderHelm, publish.HelmHelmRelease
	o.Values = []string{"env/prod.yaml"}
	o.Set = []string{"image.tag=1.4.2"}
	o.ReleaseName, o.Namespace, o.HelmSource = "shop-app", "shop", "Bucket/flux-system/app-config"
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	files := pull(t, res.Image)
	require.ElementsMatch(t, []string{"chart/Chart.yaml", "chart/values.yaml", "chart/templates/deployment.yaml", "helmrelease.yaml", "kustomization.yaml"}, keys(files))
	require.Equal(t, chart["chart/templates/deployment.yaml"], files["chart/templates/deployment.yaml"])
	for _, f := range []string{"helmrelease.yaml", "kustomization.yaml"} {
		want, err := os.ReadFile(filepath.Join("testdata", "helmrelease", f))
		require.NoError(t, err)
		require.Equal(t, string(want), files[f], f)
	}

	o.HelmSource = "OCIRepository/x"
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, "Bucket or a GitRepository")
	o.HelmSource = ""
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, `needs "helm-source"`)
}

func TestHelmInputsNeedRenderHelm(t *testing.T) {
	e := newEnv(t)
	o := e.opts(writeFiles(t, deployTree), git(sha1, "main"), "team/cfg:v1")
	o.Set = []string{"a=b"}
	_, err := publish.Run(context.Background(), o)
	require.ErrorContains(t, err, `input "set" is for render: helm`)
}
