package buildpush

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/stretchr/testify/require"
)

// goldenDir holds Dockerfiles with the config and layer entries a real
// `docker build` produced (see its README).
const goldenDir = "../../internal/dockerfile/testdata/golden"

// TestGoldenImages builds every golden case with build-push and compares
// the image config and the entries of every layer the build added with
// what Docker's BuildKit produced. The base, hoist-rig/busybox, is served
// through registry-mirror from a fixture with the rig image's config.
func TestGoldenImages(t *testing.T) {
	e := newEnv(t)
	var base v1.ConfigFile
	data, err := os.ReadFile("../../internal/dockerfile/testdata/base/hoist-rig-busybox.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &base))
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, map[string]string{"bin/": "", "bin/sh": "x", "etc/": "", "etc/passwd": "root:x:0:0::/root:/bin/sh\n"}))
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = base.OS, base.Architecture, base.Config
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	ref, err := name.ParseReference(e.host+"/hoist-rig/busybox:latest", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	baseIDs := map[v1.Hash]bool{}
	ids, err := img.ConfigFile()
	require.NoError(t, err)
	for _, d := range ids.RootFS.DiffIDs {
		baseIDs[d] = true
	}

	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*", "Dockerfile"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, df := range dirs {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o := Options{Context: dir, Registry: e.client, RegistryMirrors: []string{e.host}, BuildArgs: map[string]string{},
				OCILayoutPath: filepath.Join(t.TempDir(), "layout")}
			for _, l := range lines(t, filepath.Join(dir, "build-args")) {
				k, v, _ := strings.Cut(l, "=")
				o.BuildArgs[k] = v
			}
			if tg := lines(t, filepath.Join(dir, "target")); len(tg) > 0 {
				o.Target = tg[0]
			}
			res, err := Run(context.Background(), o)
			require.NoError(t, err)
			p, err := layout.FromPath(o.OCILayoutPath)
			require.NoError(t, err)
			built, err := p.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(res.Digest, "sha256:")})
			require.NoError(t, err)

			got := describeImage(t, built, baseIDs)
			if golden.Update() {
				golden.String(t, filepath.Join(dir, "expected.json"), jsonString(t, got)+"\n")
				return
			}
			var want map[string]any
			data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &want))
			require.Equal(t, jsonString(t, want), jsonString(t, got))
		})
	}
}

func lines(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func jsonString(t *testing.T, v any) string {
	data, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	var m any
	require.NoError(t, json.Unmarshal(data, &m))
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(m))
	return strings.TrimSuffix(b.String(), "\n")
}

// describeImage is what generate.sh keeps of an image. The layers of the
// base are skipped; hoist's created label (no Git context here) is
// dropped since docker build adds none.
func describeImage(t *testing.T, img v1.Image, base map[v1.Hash]bool) map[string]any {
	t.Helper()
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	delete(cf.Config.Labels, "org.opencontainers.image.created")
	if len(cf.Config.Labels) == 0 {
		cf.Config.Labels = nil
	}
	data, err := json.Marshal(cf)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	out := map[string]any{}
	for _, k := range []string{"architecture", "os", "variant", "author"} {
		if v, ok := m[k]; ok && v != "" {
			out[k] = v
		}
	}
	out["config"] = m["config"]
	out["layers"] = len(cf.RootFS.DiffIDs)
	layers, err := img.Layers()
	require.NoError(t, err)
	entries := [][]string{}
	for _, l := range layers {
		d, err := l.DiffID()
		require.NoError(t, err)
		if !base[d] {
			entries = append(entries, layerLines(t, l))
		}
	}
	out["layer_entries"] = entries
	return out
}

func layerLines(t *testing.T, l v1.Layer) []string {
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		kind := map[byte]string{tar.TypeDir: "dir", tar.TypeSymlink: "link", tar.TypeReg: "file"}[hdr.Typeflag]
		line := fmt.Sprintf("%s %04o %d:%d %s", kind, hdr.Mode&0o7777, hdr.Uid, hdr.Gid, strings.TrimSuffix(hdr.Name, "/"))
		if hdr.Typeflag == tar.TypeSymlink {
			line += " -> " + hdr.Linkname
		}
		if hdr.Typeflag == tar.TypeReg {
			h := sha256.New()
			_, err := io.Copy(h, tr)
			require.NoError(t, err)
			line += " sha256:" + hex.EncodeToString(h.Sum(nil))[:12]
		}
		out = append(out, line)
	}
}
