package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/hoist-ci/hoist/internal/testrig"
)

func TestWriteSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "RESULTS.md")
	require.NoError(t, os.WriteFile(p, []byte("# Results\n\n## retag\n\nold retag\n\n## build-push\n\nold\n\n## gate\n\ngate\n"), 0o644))
	require.NoError(t, writeSection(p, "## build-push", "## build-push\n\nnew\n"))
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "# Results\n\n## retag\n\nold retag\n\n## build-push\n\nnew\n\n## gate\n\ngate\n", string(data))

	require.NoError(t, os.WriteFile(p, []byte("# Results\n\n## retag\n\nr\n"), 0o644))
	require.NoError(t, writeSection(p, "## build-push", "## build-push\n\nnew\n"))
	data, err = os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "# Results\n\n## retag\n\nr\n\n## build-push\n\nnew\n", string(data))
}

// TestProxyTraffic: a push through the proxy counts the layers' bytes as
// layer bytes up and the config as other; a pull counts them down; a
// cross-repository mount moves no layer bytes.
func TestProxyTraffic(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	p := newProxy(strings.TrimPrefix(reg.URL, "http://"))
	defer p.Close()

	img, err := random.Image(4096, 2)
	require.NoError(t, err)
	var layerSize int64
	ls, err := img.Layers()
	require.NoError(t, err)
	for _, l := range ls {
		n, err := l.Size()
		require.NoError(t, err)
		layerSize += n
	}
	cfgSize, err := img.RawConfigFile()
	require.NoError(t, err)

	ref, err := name.ParseReference(p.host+"/a/img:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	tr := p.traffic(nil)
	require.Equal(t, layerSize, tr.layerUp)
	require.Equal(t, int64(len(cfgSize)), tr.otherUp)
	require.Zero(t, tr.layerDown)
	require.Equal(t, 3, tr.requests.Get("PUT", testrig.KindBlobUpload), "two layers and a config committed: %s", tr.requests)

	p.reset()
	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	ls, err = pulled.Layers()
	require.NoError(t, err)
	for _, l := range ls {
		rc, err := l.Compressed()
		require.NoError(t, err)
		_, err = new(bytes.Buffer).ReadFrom(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
	}
	tr = p.traffic(nil)
	require.Equal(t, layerSize, tr.layerDown)
	require.Zero(t, tr.layerUp)

	p.reset()
	ref2, err := name.ParseReference(p.host+"/b/img:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref2, &mountable{img, ref.Context()}))
	tr = p.traffic(nil)
	require.Zero(t, tr.layerUp+tr.layerDown, "a mount moves no layer bytes: %s", tr.requests)
}

// mountable makes remote.Write mount the layers from repo.
type mountable struct {
	v1.Image
	repo name.Repository
}

func (m *mountable) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		out[i] = &remote.MountableLayer{Layer: l, Reference: m.repo.Digest(d.String())}
	}
	return out, nil
}

// TestVerify: the check reads only the layers added on top of the base,
// applies whiteouts, and names every difference.
func TestVerify(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	base, err := random.Image(256, 1)
	require.NoError(t, err)
	cf, err := base.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	base, err = mutate.ConfigFile(base, cf)
	require.NoError(t, err)
	added := layerOf(t, map[string]string{"app/a": "1", "app/b": "2", "app/c": "3", "opt/count": "2\n"})
	deleted := layerOf(t, map[string]string{"app/.wh.c": ""})
	img, err := mutate.AppendLayers(base, added, deleted)
	require.NoError(t, err)
	ref, err := name.ParseReference(host+"/app:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))

	ctx := context.Background()
	layers, err := verify(ctx, ref.String(), base, expectation{counts: map[string]int{"app": 2}, contents: map[string]string{"opt/count": "2\n"}})
	require.NoError(t, err)
	require.Len(t, layers, 3)

	_, err = verify(ctx, ref.String(), base, expectation{counts: map[string]int{"app": 3, "data": 1}, contents: map[string]string{"opt/count": "3\n"}, nonEmpty: []string{"x"}})
	require.ErrorContains(t, err, `/opt/count is "2\n", want "3\n"; /x is missing or empty; 0 files under /data, want 1; 2 files under /app, want 3`)

	_, err = verify(ctx, ref.String(), img, expectation{})
	require.ErrorContains(t, err, "nothing was added")
}

func layerOf(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))}))
		_, err := tw.Write([]byte(c))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	require.NoError(t, err)
	return l
}

func TestSelectScenarios(t *testing.T) {
	all := scenarios(10)
	for _, tc := range []struct {
		names []string
		want  []string
		err   string
	}{
		{names: allScenarios, want: allScenarios},
		{names: []string{"debian-warm", "debian"}, want: []string{"debian", "debian-warm"}},
		{names: []string{"copy-warm"}, err: "copy-warm needs copy"},
		{names: []string{"nope"}, err: `unknown scenario "nope"`},
		{names: nil, err: "none selected"},
	} {
		got, err := selectScenarios(all, tc.names)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		var ids []string
		for _, sc := range got {
			ids = append(ids, sc.id)
		}
		require.Equal(t, tc.want, ids)
	}
}

// TestReport: the Markdown section and the chart for fixed samples
// (golden files; -update rewrites them).
func TestReport(t *testing.T) {
	scs, err := selectScenarios(scenarios(2000), []string{"busybox-run", "debian", "debian-warm"})
	require.NoError(t, err)
	res := results{}
	add := func(sc, tool string, secs []float64, rss int64, layerUp, layerDown int64) {
		for _, s := range secs {
			var inner time.Duration
			if tool == "kaniko" {
				inner = time.Duration((s - 0.4) * float64(time.Second))
			}
			var shm int64
			if tool == "hoist" && sc == "debian" {
				shm = 127e6
			}
			res.add(sc, tool, sample{d: time.Duration(s * float64(time.Second)), inner: inner, rss: rss, shm: shm, traffic: traffic{
				layerUp: layerUp, layerDown: layerDown, otherUp: 900, otherDown: 400,
				requests: testrig.Counts{{Method: "GET", Kind: testrig.KindPing}: 2, {Method: "HEAD", Kind: testrig.KindBlob}: 3},
			}})
		}
	}
	add("busybox-run", "hoist", []float64{1.2, 1.0, 1.1}, 40e6, 1.2e6, 1.15e6)
	add("busybox-run", "kaniko", []float64{3.0, 3.2, 3.1}, 57e6, 2.5e6, 1.15e6)
	add("busybox-run", "buildah", []float64{8.0, 8.4, 8.2}, 50e6, 1.1e6, 1.15e6)
	add("debian", "hoist", []float64{1.0, 0.9, 1.1}, 40e6, 1.1e6, 51e6)
	add("debian", "hoist-disk", []float64{4.0, 3.5, 3.9}, 40e6, 1.1e6, 51e6)
	add("busybox-run", "hoist-disk", []float64{1.3, 1.2, 1.4}, 40e6, 1.2e6, 1.15e6)
	add("debian-warm", "hoist-disk", []float64{0.3, 0.29, 0.31}, 23e6, 0, 0)
	add("debian", "kaniko", []float64{10.0, 10.3, 10.5}, 70e6, 2.3e6, 51e6)
	add("debian", "buildah", []float64{47, 50, 49}, 55e6, 1.1e6, 51e6)
	add("debian-warm", "hoist", []float64{0.3, 0.29, 0.31}, 23e6, 0, 0)
	add("debian-warm", "kaniko", []float64{1.4, 1.38, 1.5}, 50e6, 0, 1.17e6)
	add("debian-warm", "buildah", []float64{60, 61, 59}, -1, 0, 52e6)
	rep := report{
		cfg: config{rounds: 3}, scenarios: scs, res: res,
		tools:   []tool{hoistTool("x", false), hoistTool("x", true), kanikoTool("x", false), buildahTool("x")},
		sizes:   map[string]int64{"busybox-run": 1.8e6, "debian": 1.8e6},
		elapsed: 5 * time.Minute, date: time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC), loadStart: "1.00", loadEnd: "2.00", machine: "2 CPUs, linux/amd64",
	}
	goldenFile(t, "report.md", rep.markdown())
	goldenFile(t, "chart.svg", rep.chart())
}

func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	golden.String(t, filepath.Join("testdata", name), got)
}
