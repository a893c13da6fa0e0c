package buildpush

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

func TestMultiPlatformIndex(t *testing.T) {
	e := newEnv(t)
	var adds []mutate.IndexAddendum
	baseLayer := map[string]v1.Hash{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := mutate.AppendLayers(empty.Image, tarLayer(t, map[string]string{"etc/": "", "etc/arch": arch}))
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
		ls, err := img.Layers()
		require.NoError(t, err)
		baseLayer[arch], err = ls[0].Digest()
		require.NoError(t, err)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, err := name.ParseReference(e.host+"/base/multi:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, idx))

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": fmt.Sprintf("FROM %s/base/multi:1\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY a /srv/\n", e.host), "a": "a"})
	o := e.opts(dir, e.host+"/multi/app:v1", e.host+"/multi2/app:v1")
	o.Platforms = []string{"linux/amd64", "linux/arm64"}
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	// COPY into an image base reads each platform's base file list
	// (headers): the layer repeats /srv as the base has it.
	require.Equal(t, int64(2), res.BaseReads)
	require.Equal(t, 2, res.LayersBuilt)

	for _, repo := range []string{"multi", "multi2"} {
		r, err := name.ParseReference(e.host+"/"+repo+"/app:v1", name.Insecure)
		require.NoError(t, err)
		got, err := remote.Index(r)
		require.NoError(t, err)
		d, err := got.Digest()
		require.NoError(t, err)
		require.Equal(t, res.Digest, d.String())
		m, err := got.IndexManifest()
		require.NoError(t, err)
		require.Len(t, m.Manifests, 2)
		for _, desc := range m.Manifests {
			child, err := got.Image(desc.Digest)
			require.NoError(t, err)
			cf, err := child.ConfigFile()
			require.NoError(t, err)
			arch := desc.Platform.Architecture
			require.Equal(t, arch, cf.Architecture)
			require.Equal(t, arch, cf.Config.Labels["arch"])
			ls, err := child.Layers()
			require.NoError(t, err)
			first, err := ls[0].Digest()
			require.NoError(t, err)
			require.Equal(t, baseLayer[arch], first, "each platform starts from its own base")
		}
	}

	o.Platforms = []string{"linux/amd64", "linux/s390x"}
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "linux/s390x")
}
