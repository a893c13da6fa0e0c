package fluxartifact

import (
	"bytes"
	"context"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fluxoci "github.com/fluxcd/pkg/oci"
	fluxtar "github.com/fluxcd/pkg/tar"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

// writeTree writes files (path → content; a trailing "*" in the path makes
// the file executable) under dir with the modes a git checkout has under
// umask 022, and returns dir.
func writeTree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for p, content := range files {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), mode))
		require.NoError(t, os.Chmod(full, mode))
	}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	}))
	return dir
}

// sampleTree has what a deploy directory may hold, and what Flux leaves out.
func sampleTree(t *testing.T) string {
	long := strings.Repeat("very-long-directory-name/", 6) + "deployment.yaml"
	dir := writeTree(t, t.TempDir(), map[string]string{
		"kustomization.yaml":          "resources:\n  - deploy.yaml\n",
		"deploy.yaml":                 "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n",
		"base/service.yaml":           "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n",
		"base/zz/config.json":         `{"a": 1}`,
		"base/a-b/x.yaml":             "x: 1\n",
		"base/a/y.yaml":               "y: 1\n",
		"scripts/hook.sh*":            "#!/bin/sh\necho hi\n",
		long:                          "kind: ConfigMap\n",
		".git/config":                 "[core]\n",
		".git/objects/ab/cdef":        "blob",
		".gitignore":                  "*.tmp\n",
		"docs/diagram.png":            "\x89PNG",
		"release.tar.gz":              "gz",
		"empty-dir/.gitattributes":    "* text\n",
		"values/big.yaml":             strings.Repeat("key: value\n", 5000),
		"Ünïcode/fïle.yaml":           "a: b\n",
		"spaces in name/file 1.yaml":  "a: b\n",
		"deep/er/and/deeper/x.yaml":   "a: b\n",
		"deep/er/and/deeper/y.yaml":   "a: c\n",
		"deep/er/and/other/zz.yaml":   "a: d\n",
		"deep/er/and/other/.keep":     "",
		"deep/er/and/other/README.md": "# hi\n",
	})
	require.NoError(t, os.Symlink("deploy.yaml", filepath.Join(dir, "link.yaml")))
	return dir
}

// TestTarballIsFluxs: for the same directory, the tarball's bytes are those
// fluxcd/pkg/oci's Build writes for `flux push artifact`.
func TestTarballIsFluxs(t *testing.T) {
	dir := sampleTree(t)
	tree, err := Collect(dir, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"link.yaml"}, tree.Skipped)
	ours, err := tree.Tarball()
	require.NoError(t, err)

	fluxFile := filepath.Join(t.TempDir(), "flux.tgz")
	require.NoError(t, fluxoci.NewClient(nil).Build(fluxFile, dir, DefaultIgnore))
	theirs, err := os.ReadFile(fluxFile)
	require.NoError(t, err)
	require.True(t, bytes.Equal(ours, theirs), "the tarball differs from flux's (%d bytes vs %d)", len(ours), len(theirs))
}

// TestImageIsFluxPushs pushes the same directory with Flux's own client
// (what `flux push artifact --reproducible` runs) and with Image: the two
// manifests have the same digest. Then Flux's client pulls hoist's artifact
// and extracts it with fluxcd/pkg/tar, and the tree is the source's minus
// what Flux ignores.
func TestImageIsFluxPushs(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := sampleTree(t)
	meta := Metadata{
		Created:     time.Unix(0, 0),
		Source:      "https://github.com/acme/app",
		Revision:    "main@sha1:0123456789abcdef0123456789abcdef01234567",
		Annotations: map[string]string{"org.opencontainers.image.description": "prod"},
	}

	client := fluxoci.NewClient([]crane.Option{crane.Insecure})
	fluxURL, err := client.Push(ctx, host+"/app/flux:v1", dir,
		fluxoci.WithPushMetadata(fluxoci.Metadata{
			Created: meta.Created.UTC().Format(time.RFC3339), Source: meta.Source, Revision: meta.Revision,
			Annotations: meta.Annotations,
		}),
		fluxoci.WithPushIgnorePaths(DefaultIgnore...))
	require.NoError(t, err)

	tree, err := Collect(dir, nil)
	require.NoError(t, err)
	tgz, err := tree.Tarball()
	require.NoError(t, err)
	img, err := Image(tgz, meta)
	require.NoError(t, err)
	digest, err := img.Digest()
	require.NoError(t, err)
	require.Equal(t, fluxURL[strings.Index(fluxURL, "@")+1:], digest.String(), "hoist's manifest digest differs from flux push's")

	ref := host + "/app/hoist:v1"
	require.NoError(t, crane.Push(img, ref, crane.Insecure))
	out := t.TempDir()
	pulled, err := client.Pull(ctx, ref, out)
	require.NoError(t, err)
	require.Equal(t, meta.Revision, pulled.Revision)
	require.Equal(t, meta.Source, pulled.Source)
	requireSameFiles(t, tree, out)

	// source-controller's OCIRepository extracts the layer with
	// fluxcd/pkg/tar's defaults (size limit, symlinks refused).
	m, err := img.Manifest()
	require.NoError(t, err)
	require.True(t, IsArtifact(m))
	layer, err := remote.Layer(mustDigest(t, host+"/app/hoist@"+m.Layers[0].Digest.String()), remote.WithContext(ctx))
	require.NoError(t, err)
	rc, err := layer.Compressed()
	require.NoError(t, err)
	defer rc.Close()
	out2 := t.TempDir()
	require.NoError(t, fluxtar.Untar(rc, out2))
	requireSameFiles(t, tree, out2)
}

func requireSameFiles(t *testing.T, tree *Tree, dir string) {
	t.Helper()
	want := map[string]string{}
	for _, f := range tree.Regular() {
		want[f.Path] = string(f.Data)
	}
	got := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	}))
	require.Equal(t, want, got)
	for _, left := range []string{".git/config", "docs/diagram.png", "release.tar.gz", ".gitignore", "link.yaml"} {
		require.NotContains(t, got, left)
	}
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s, name.Insecure)
	require.NoError(t, err)
	return d
}
