package publish_test

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fluxtar "github.com/fluxcd/pkg/tar"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/components/publish"
	"github.com/hoist-ci/hoist/internal/fluxartifact"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	sha1 = "0123456789abcdef0123456789abcdef01234567"
	sha2 = "89abcdef0123456789abcdef0123456789abcdef"
)

type env struct {
	host    string
	counter *testrig.Counter
	client  *registry.Client
}

func newEnv(t *testing.T) env {
	t.Helper()
	host := testrig.InProcessRegistry(t)
	counter := testrig.NewCounter(http.DefaultTransport)
	client, err := registry.New(registry.Options{Insecure: []string{host}, Transport: counter, UserAgent: "hoist/test"})
	require.NoError(t, err)
	return env{host: host, counter: counter, client: client}
}

func git(sha, branch string) gitmeta.Context {
	return gitmeta.Context{Event: gitmeta.EventPush, SHA: sha, Branch: branch, DefaultBranch: "main", RepositoryURL: "https://github.com/acme/app"}
}

// writeFiles writes path → content under a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o644))
	}
	return dir
}

var deployTree = map[string]string{
	"kustomization.yaml": "resources:\n  - deployment.yaml\n  - service.yaml\n",
	"deployment.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 2\n",
	"service.yaml":       "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n",
}

func (e env) opts(dir string, g gitmeta.Context, tags ...string) publish.Options {
	for i, t := range tags {
		tags[i] = e.host + "/" + t
	}
	return publish.Options{Workspace: dir, Path: ".", Tags: tags, Git: g, Registry: e.client}
}

func (e env) manifest(t *testing.T, ref string) (*v1.Manifest, string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Get(r)
	require.NoError(t, err)
	m, err := v1.ParseManifest(bytes.NewReader(d.Manifest))
	require.NoError(t, err)
	return m, d.Digest.String()
}

func TestPublishesAFluxArtifact(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, deployTree)
	res, err := publish.Run(context.Background(), e.opts(dir, git(sha1, "main"), "team/app-manifests:v1", "team/app-manifests:latest"))
	require.NoError(t, err)
	require.True(t, res.Pushed)
	require.Equal(t, []string{e.host + "/team/app-manifests:v1", e.host + "/team/app-manifests:latest"}, res.Tags)
	require.Equal(t, e.host+"/team/app-manifests@"+res.Digest, res.Image)
	require.Equal(t, "main@sha1:"+sha1, res.Revision)
	require.Equal(t, 3, res.Files)

	for _, tag := range res.Tags {
		m, digest := e.manifest(t, tag)
		require.Equal(t, res.Digest, digest)
		require.True(t, fluxartifact.IsArtifact(m))
		require.Equal(t, map[string]string{
			"org.opencontainers.image.created":  "1970-01-01T00:00:00Z",
			"org.opencontainers.image.source":   "https://github.com/acme/app",
			"org.opencontainers.image.revision": "main@sha1:" + sha1,
		}, m.Annotations)
	}
	out := res.Outputs()
	require.Equal(t, "true", out["pushed"])
	require.Equal(t, res.Image, out["image"])

	// Reproducible: the same input, another run, the same digest.
	again, err := publish.Run(context.Background(), e.opts(dir, git(sha1, "main"), "team/app-manifests:v1"))
	require.NoError(t, err)
	require.Equal(t, res.Digest, again.Digest)
}

// TestDiffSkipsThePushWhenTheContentIsThere: with diff, a run whose content
// a tag already holds writes nothing (0 bytes up), even from a new commit,
// and a new tag is pointed at the manifest Flux already has.
func TestDiffSkipsThePushWhenTheContentIsThere(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, deployTree)
	first, err := publish.Run(context.Background(), e.opts(dir, git(sha1, "main"), "team/cfg:0123456", "team/cfg:latest"))
	require.NoError(t, err)

	e.counter.Reset()
	o := e.opts(dir, git(sha1, "main"), "team/cfg:0123456", "team/cfg:latest")
	o.Diff = true
	same, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.False(t, same.Pushed)
	require.True(t, same.Unchanged)
	require.Equal(t, first.Digest, same.Digest)
	c := e.counter.Snapshot()
	require.Zero(t, c.Blobs(), "no blob request at all: %s", c)
	require.Zero(t, c.Get(http.MethodPut, testrig.KindManifest), "no manifest written: %s", c)

	// A new commit with the same content: latest keeps its digest (Flux
	// sees no new revision); the new commit's tag points at it.
	e.counter.Reset()
	o = e.opts(dir, git(sha2, "main"), "team/cfg:89abcde", "team/cfg:latest")
	o.Diff = true
	next, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, first.Digest, next.Digest)
	require.True(t, next.Unchanged)
	c = e.counter.Snapshot()
	require.Zero(t, c.Blobs(), "no blob request: %s", c)
	require.Equal(t, 1, c.Get(http.MethodPut, testrig.KindManifest), "one tag written: %s", c)
	_, d := e.manifest(t, e.host+"/team/cfg:89abcde")
	require.Equal(t, first.Digest, d)

	// Changed content is pushed.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "deployment.yaml"), []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 3\n"), 0o644))
	o = e.opts(dir, git(sha2, "main"), "team/cfg:89abcde", "team/cfg:latest")
	o.Diff = true
	changed, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.True(t, changed.Pushed)
	require.False(t, changed.Unchanged)
	require.NotEqual(t, first.Digest, changed.Digest)
	_, d = e.manifest(t, e.host+"/team/cfg:latest")
	require.Equal(t, changed.Digest, d)
}

func TestTagsFromGit(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, deployTree)
	o := publish.Options{Workspace: dir, Image: e.host + "/team/cfg", Git: git(sha1, "main"), Registry: e.client}
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{e.host + "/team/cfg:latest", e.host + "/team/cfg:0123456"}, res.Tags)

	tag := gitmeta.Context{Event: gitmeta.EventTag, Tag: "v1.4.2", SHA: sha2, RepositoryURL: "https://github.com/acme/app"}
	o = publish.Options{Workspace: dir, Image: e.host + "/team/cfg", Git: tag, Registry: e.client}
	res, err = publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"v1.4.2", "1.4.2", "1.4", "1", "latest", "89abcde"}, tagNames(res.Tags))
	require.Equal(t, "v1.4.2@sha1:"+sha2, res.Revision)
}

func tagNames(refs []string) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r[strings.LastIndex(r, ":")+1:])
	}
	return out
}

func TestInvalidManifestsPublishNothing(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, map[string]string{
		"ok.yaml":          "a: 1\n",
		"apps/broken.yaml": "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: 1\n   b: 2\n",
		"dup.yml":          "---\nkind: A\n---\nmetadata:\n  name: x\n  name: y\n",
		"notes.txt":        "not: [yaml\n",
	})
	_, err := publish.Run(context.Background(), e.opts(dir, git(sha1, "main"), "team/cfg:v1"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "apps/broken.yaml:5: ")
	require.Contains(t, err.Error(), `dup.yml:6: mapping key "name" already defined at line 5`)
	require.NotContains(t, err.Error(), "notes.txt")
	require.Zero(t, e.counter.Snapshot().Total(), "nothing reached the registry")
}

func TestKustomizeBuild(t *testing.T) {
	e := newEnv(t)
	dir := writeFiles(t, map[string]string{
		"base/kustomization.yaml":          "resources:\n  - deployment.yaml\n",
		"base/deployment.yaml":             "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app:1.0.0\n",
		"overlays/prod/kustomization.yaml": "resources:\n  - ../../base\nnamePrefix: prod-\nimages:\n  - name: registry.example.com/app\n    newTag: 1.4.2\nconfigMapGenerator:\n  - name: settings\n    literals: [MODE=prod]\n",
	})
	o := e.opts(dir, git(sha1, "main"), "team/cfg:prod")
	o.Path, o.Render = "overlays/prod", publish.RenderKustomize
	res, err := publish.Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, 1, res.Files)
	files := pull(t, res.Image)
	require.Equal(t, []string{publish.ManifestsFile}, keys(files))
	want, err := os.ReadFile("testdata/kustomize/manifests.yaml")
	require.NoError(t, err)
	require.Equal(t, string(want), files[publish.ManifestsFile])

	o.Path = "base/deployment.yaml"
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, "is a file")
	o.Path = "base/missing"
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, "does not exist")
	writeFile(t, filepath.Join(dir, "overlays/broken/kustomization.yaml"), "resources:\n  - ../../nowhere\n")
	o.Path = "overlays/broken"
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, "kustomize build overlays/broken")
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// pull reads an artifact's files back (path → content).
func pull(t *testing.T, ref string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Compressed()
	require.NoError(t, err)
	defer rc.Close()
	require.NoError(t, fluxtar.Untar(rc, dir)) // Flux's own extraction
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	}))
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestImagesWrittenIntoTheContent: the image a build job pushed is written
// into the kustomize build (and into a copy of a plain directory: the
// checkout is left alone).
func TestImagesWrittenIntoTheContent(t *testing.T) {
	e := newEnv(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	dir := writeFiles(t, map[string]string{
		"deploy/deployment.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app # the app\n          image: registry.example.com/team/app:1.0.0\n",
		"deploy/kustomization.yaml": "resources: [deployment.yaml]\n",
	})
	for _, render := range []string{publish.RenderNone, publish.RenderKustomize} {
		o := e.opts(dir, git(sha1, "main"), "team/cfg:"+render)
		o.Path, o.Render = "deploy", render
		o.Images = []string{"registry.example.com/team/app=registry.example.com/team/app:1.4.2@" + digest}
		res, err := publish.Run(context.Background(), o)
		require.NoError(t, err, render)
		files := pull(t, res.Image)
		f := files["deployment.yaml"]
		if render == publish.RenderKustomize {
			f = files[publish.ManifestsFile]
		}
		require.Contains(t, f, "image: registry.example.com/team/app:1.4.2@"+digest, render)
	}
	orig, err := os.ReadFile(filepath.Join(dir, "deploy/deployment.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(orig), "app:1.0.0", "the checkout is not changed")

	o := e.opts(dir, git(sha1, "main"), "team/cfg:x")
	o.Path, o.Images = "deploy", []string{"registry.example.com/team/typo=1.4.2"}
	_, err = publish.Run(context.Background(), o)
	require.ErrorContains(t, err, "matches no image reference")
}
