package buildpush

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/dockerfile"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/layer"
	"github.com/hoist-ci/hoist/internal/need"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/snapshot"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// recorder remembers the URLs of GET requests.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	gets []string
	puts []string
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.gets, r.puts = nil, nil
	r.mu.Unlock()
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		r.mu.Lock()
		r.gets = append(r.gets, req.URL.Path)
		r.mu.Unlock()
	}
	if d := req.URL.Query().Get("digest"); d != "" && (req.Method == http.MethodPut || req.Method == http.MethodPost) {
		r.mu.Lock()
		r.puts = append(r.puts, d)
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) fetched(digest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.gets {
		if strings.HasSuffix(g, "/blobs/"+digest) {
			return true
		}
	}
	return false
}

type env struct {
	rec     *recorder
	host    string
	counter *testrig.Counter
	client  *registry.Client
	base    string
	baseImg v1.Image
	// snapshot is the RUN snapshot method the build uses (run_test.go).
	snapshot snapshot.Choice
}

// tarLayer makes a layer from name → content (a trailing / is a directory).
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range dockerfile.SortedKeys(files) {
		if strings.HasSuffix(n, "/") {
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}))
			continue
		}
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}))
		_, err := tw.Write([]byte(files[n]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	require.NoError(t, err)
	return l
}

func newEnv(t *testing.T) *env {
	t.Helper()
	host := testrig.InProcessRegistry(t)
	rec := &recorder{next: http.DefaultTransport}
	counter := testrig.NewCounter(rec)
	client, err := registry.New(registry.Options{Insecure: []string{host}, Transport: counter, UserAgent: "hoist/test"})
	require.NoError(t, err)
	e := &env{rec: rec, host: host, counter: counter, client: client, base: host + "/base/busybox:1"}
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, map[string]string{
		"bin/":       "",
		"bin/sh":     "#!fake shell\n",
		"etc/":       "",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1001:\nstaff:x:50:\n",
	}))
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	cf.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	ref, err := name.ParseReference(e.base, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	e.baseImg = img
	return e
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for n, c := range files {
		p := filepath.Join(dir, n)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(c), 0o644))
	}
}

func (e *env) opts(dir string, tags ...string) Options {
	return Options{Context: dir, Tags: tags, Push: true, Registry: e.client}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r)
	require.NoError(t, err)
	return img
}

type fileInfo struct {
	Mode     int64
	UID, GID int
	Link     string
	Content  string
	ModTime  time.Time
}

// layerFiles reads the i-th layer of an image.
func layerFiles(t *testing.T, img v1.Image, i int) map[string]fileInfo {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	rc, err := layers[i].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]fileInfo{}
	var order []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[hdr.Name] = fileInfo{Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Link: hdr.Linkname, Content: string(data), ModTime: hdr.ModTime}
		order = append(order, hdr.Name)
	}
	require.IsNonDecreasing(t, order, "entries are sorted")
	return out
}

// TestCopyOnlyBuildReadsTheBaseOnce: a COPY-only build never unpacks its
// base; it reads the base's file list once (headers: the layer repeats
// the directories the base has, as Docker's does) and keeps it in the
// layer cache, so the next build over the same base downloads no base
// layer even when its COPY misses.
func TestCopyOnlyBuildReadsTheBaseOnce(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile":      "ARG BASE\nFROM ${BASE}\nENV APP=1\nWORKDIR /srv\nCOPY --chown=1000:50 --chmod=0750 app.sh bin/\nCOPY conf/ /etc/app/\nCMD [\"/srv/bin/app.sh\"]\n",
		"app.sh":          "#!/bin/sh\necho hi\n",
		"conf/a.conf":     "a=1\n",
		"conf/sub/b.conf": "b=2\n",
	}
	writeTree(t, dir, files)
	baseLayers, err := e.baseImg.Layers()
	require.NoError(t, err)
	baseDigest, err := baseLayers[0].Digest()
	require.NoError(t, err)
	withCache := func(o Options) Options {
		o.BuildArgs = map[string]string{"BASE": e.base}
		o.Cache, o.CacheRepo = true, e.host+"/team/cache"
		return o
	}
	res, err := Run(context.Background(), withCache(e.opts(dir, e.host+"/team/app:v0")))
	require.NoError(t, err)
	require.Equal(t, int64(1), res.BaseReads, "the base's file list, read once for the whole build")

	// A new commit: every file step misses, the base's list comes from the cache.
	files["conf/a.conf"] = "a=2\n"
	files["app.sh"] = "#!/bin/sh\necho hello\n"
	writeTree(t, dir, files)
	e.counter.Reset()
	e.rec.reset()
	o := withCache(e.opts(dir, e.host+"/team/app:v1", e.host+"/other/app:v1"))
	res, err = Run(context.Background(), o)
	require.NoError(t, err)
	require.Zero(t, res.BaseReads)
	require.Equal(t, 2, res.LayersBuilt)
	// No GET of the base layer blob: it is mounted or already present.
	require.False(t, e.rec.fetched(baseDigest.String()), "the base layer was downloaded")

	img := pull(t, e.host+"/other/app:v1")
	d, err := img.Digest()
	require.NoError(t, err)
	require.Equal(t, res.Digest, d.String())
	require.Equal(t, e.host+"/team/app@"+res.Digest, res.Image)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 4, "the base, WORKDIR, two COPY")
	first, err := layers[0].Digest()
	require.NoError(t, err)
	require.Equal(t, baseDigest, first)

	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, []string{"PATH=/usr/bin:/bin", "APP=1"}, cf.Config.Env)
	require.Equal(t, "/srv", cf.Config.WorkingDir)
	require.Equal(t, []string{"/srv/bin/app.sh"}, cf.Config.Cmd)

	// Each layer is uploaded once (to the cache) and mounted into both destinations.
	for _, l := range layers[1:] {
		d, err := l.Digest()
		require.NoError(t, err)
		n := 0
		for _, up := range e.rec.uploadedDigests() {
			if up == d.String() {
				n++
			}
		}
		require.LessOrEqual(t, n, 1, "layer %s uploaded %d times for two destinations (once to the cache, then mounted)", d, n)
	}

	require.Contains(t, layerFiles(t, img, 1), "srv/", "WORKDIR makes /srv as a layer of its own, as BuildKit does")
	l1 := layerFiles(t, img, 2)
	require.Equal(t, fileInfo{Mode: 0o750, UID: 1000, GID: 50, Content: "#!/bin/sh\necho hello\n"}, strip(l1["srv/bin/app.sh"]))
	require.Contains(t, l1, "srv/")
	require.Contains(t, l1, "srv/bin/")
	l2 := layerFiles(t, img, 3)
	require.Equal(t, "b=2\n", l2["etc/app/sub/b.conf"].Content)
	require.Equal(t, int64(0o644), l2["etc/app/a.conf"].Mode)
	require.Zero(t, l2["etc/app/a.conf"].UID, "no host uid leaks: COPY writes root unless --chown")
}

func strip(f fileInfo) fileInfo { f.ModTime = time.Time{}; return f }

func TestChownNamesReadTheStagePasswd(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s\nCOPY --chown=app a /a\nCOPY --chown=app:staff a /b\nCOPY --chown=nobody a /c\n", e.base),
		"a":          "x",
	})
	_, err := Run(context.Background(), e.opts(dir, e.host+"/team/app:v1"))
	require.ErrorContains(t, err, `Dockerfile:4: --chown=nobody: no user "nobody" in the stage's /etc/passwd`)

	writeTree(t, dir, map[string]string{"Dockerfile": fmt.Sprintf("FROM %s\nCOPY --chown=app a /a\nCOPY --chown=app:staff a /b\n", e.base)})
	res, err := Run(context.Background(), e.opts(dir, e.host+"/team/app:v1"))
	require.NoError(t, err)
	require.Positive(t, res.BaseReads, "a user name needs the base's /etc/passwd")
	img := pull(t, e.host+"/team/app:v1")
	require.Equal(t, [2]int{1000, 1001}, ids(layerFiles(t, img, 1)["a"]))
	require.Equal(t, [2]int{1000, 50}, ids(layerFiles(t, img, 2)["b"]))
}

func ids(f fileInfo) [2]int { return [2]int{f.UID, f.GID} }

func TestReproducibleBuildsGiveTheSameDigest(t *testing.T) {
	e := newEnv(t)
	epoch := time.Unix(1700000000, 0)
	var digests []string
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{
			"Dockerfile": "FROM scratch\nCOPY . /app/\n",
			"a.txt":      "a",
			"sub/b.txt":  "b",
		})
		// Different host times on each side.
		when := time.Now().Add(time.Duration(i) * time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(dir, "a.txt"), when, when))
		o := e.opts(dir, fmt.Sprintf("%s/repro/app:%d", e.host, i))
		o.Epoch = &epoch
		o.Now = func() time.Time { return time.Now().Add(time.Duration(i) * time.Minute) }
		res, err := Run(context.Background(), o)
		require.NoError(t, err)
		digests = append(digests, res.Digest)
		img := pull(t, fmt.Sprintf("%s/repro/app:%d", e.host, i))
		for n, f := range layerFiles(t, img, 0) {
			require.False(t, f.ModTime.After(epoch), "%s: %v is after the epoch", n, f.ModTime)
		}
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		require.True(t, cf.Created.Time.Equal(epoch))
	}
	require.Equal(t, digests[0], digests[1])
}

func TestContextSafety(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "nope"})
	cases := []struct {
		name, dockerfile, want string
	}{
		{"dotdot", "FROM scratch\nCOPY ../secret /s\n", `source "../secret" points above the context with ../`},
		{"absolute", "FROM scratch\nCOPY /etc/passwd /p\n", `source "/etc/passwd" not found in the build context`},
		{"symlink out", "FROM scratch\nCOPY out/secret /s\n", "goes through the symlink out ->"},
		{"symlink file out", "FROM scratch\nCOPY link /s\n", "goes through the symlink link ->"},
		{"ignored", "FROM scratch\nCOPY ignored.txt /s\n", "excluded by .dockerignore"},
		{"run without a shell", "FROM scratch\nCOPY in.txt /in\nRUN echo\n", "Dockerfile:3: RUN: /bin/sh is not in the stage's filesystem"},
		{"bind outside", "FROM scratch\nRUN --mount=type=bind,source=../in.txt,target=/x [\"/x\"]\n", "Dockerfile:2: RUN --mount: type=bind,source=../in.txt points above the build context with ../"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"Dockerfile": c.dockerfile, "in.txt": "in", "ignored.txt": "x", ".dockerignore": "ignored.txt\n"})
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, "out")))
			require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")))
			_, err := Run(context.Background(), e.opts(dir, e.host+"/safe/app:v1"))
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "nope")
		})
	}
}

func TestSymlinksInsideAndDockerignore(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile":              "FROM scratch\nCOPY . /app/\n",
		"Dockerfile.dockerignore": "*.log\n!keep.log\nsecret/\n",
		".dockerignore":           "nothing-here\n",
		"a.txt":                   "a",
		"debug.log":               "x",
		"keep.log":                "k",
		"secret/key":              "k",
		"dir/f":                   "f",
	})
	require.NoError(t, os.Symlink("a.txt", filepath.Join(dir, "rel-link")))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "abs-link")))
	o := e.opts(dir, e.host+"/links/app:v1")
	o.Dockerfile = filepath.Join(dir, "Dockerfile")
	_, err := Run(context.Background(), o)
	require.NoError(t, err)
	files := layerFiles(t, pull(t, e.host+"/links/app:v1"), 0)
	require.Equal(t, "a.txt", files["app/rel-link"].Link)
	require.Equal(t, "/etc/passwd", files["app/abs-link"].Link, "a link is copied as a link, never followed")
	require.NotContains(t, files, "app/debug.log")
	require.Contains(t, files, "app/keep.log")
	require.NotContains(t, files, "app/secret/key")
	require.Contains(t, files, "app/dir/f")
	require.Contains(t, files, "app/Dockerfile")
}

func TestAddArchiveAndURL(t *testing.T) {
	e := newEnv(t)
	payload := []byte("downloaded")
	sum := sha256.Sum256(payload)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(payload) }))
	defer srv.Close()
	dir := t.TempDir()
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "pkg/tool", Typeflag: tar.TypeReg, Mode: 0o755, Size: 4, Uid: 7, Gid: 8}))
	_, _ = tw.Write([]byte("tool"))
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	writeTree(t, dir, map[string]string{
		"Dockerfile": fmt.Sprintf("FROM scratch\nADD pkg.tgz /opt/\nADD --checksum=sha256:%s %s/files/data.bin /dl/\n", hex.EncodeToString(sum[:]), srv.URL),
		"pkg.tgz":    tgz.String(),
	})
	o := e.opts(dir, e.host+"/add/app:v1")
	o.HTTP = srv.Client()
	_, err := Run(context.Background(), o)
	require.NoError(t, err)
	img := pull(t, e.host+"/add/app:v1")
	l0 := layerFiles(t, img, 0)
	require.Equal(t, fileInfo{Mode: 0o755, UID: 7, GID: 8, Content: "tool"}, strip(l0["opt/pkg/tool"]))
	l1 := layerFiles(t, img, 1)
	require.Equal(t, fileInfo{Mode: 0o600, Content: "downloaded"}, strip(l1["dl/data.bin"]))

	writeTree(t, dir, map[string]string{"Dockerfile": fmt.Sprintf("FROM scratch\nADD --checksum=sha256:%s %s/x /x\n", strings.Repeat("0", 64), srv.URL)})
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "Dockerfile:2: ADD "+srv.URL+"/x: checksum mismatch")
}

func TestLocalOutputs(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	out := t.TempDir()
	o := Options{Context: dir, Registry: e.client, Tags: []string{"example.com/app:v1"},
		TarPath: filepath.Join(out, "image.tar"), OCILayoutPath: filepath.Join(out, "layout"),
		DigestFile: filepath.Join(out, "digest"), ImageNameWithDigestFile: filepath.Join(out, "name"),
		Compression: layer.Zstd}
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	tag, err := name.NewTag("example.com/app:v1")
	require.NoError(t, err)
	img, err := tarball.ImageFromPath(o.TarPath, &tag)
	require.NoError(t, err)
	d, err := img.Digest()
	require.NoError(t, err)
	_ = d // a docker tarball re-encodes the manifest; its layers are what count
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	data, err := os.ReadFile(o.DigestFile)
	require.NoError(t, err)
	require.Equal(t, res.Digest, string(data))
	data, err = os.ReadFile(o.ImageNameWithDigestFile)
	require.NoError(t, err)
	require.Equal(t, "example.com/app@"+res.Digest+"\n", string(data))
	require.FileExists(t, filepath.Join(o.OCILayoutPath, "index.json"))
	lp, err := layout.FromPath(o.OCILayoutPath)
	require.NoError(t, err)
	li, err := lp.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(res.Digest, "sha256:")})
	require.NoError(t, err)
	ll, err := li.Layers()
	require.NoError(t, err)
	mt, err := ll[0].MediaType()
	require.NoError(t, err)
	require.Equal(t, "application/vnd.oci.image.layer.v1.tar+zstd", string(mt))
}

func TestTagsAndLabelsFromGit(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nLABEL org.opencontainers.image.title=mine\nCOPY a /a\n", "a": "a"})
	o := e.opts(dir)
	o.Image = e.host + "/git/app"
	o.Git = gitmeta.Context{Event: gitmeta.EventPush, Branch: "main", DefaultBranch: "main", SHA: "0123456789abcdef0123456789abcdef01234567", RepositoryURL: "https://github.com/o/app"}
	o.Labels = map[string]string{"team": "core"}
	o.Annotations = map[string]string{"com.example.note": "x"}
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, []string{e.host + "/git/app:latest", e.host + "/git/app:0123456"}, res.Tags)
	img := pull(t, e.host+"/git/app:0123456")
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef0123456789abcdef01234567", cf.Config.Labels["org.opencontainers.image.revision"])
	require.Equal(t, "https://github.com/o/app", cf.Config.Labels["org.opencontainers.image.source"])
	require.Equal(t, "app", cf.Config.Labels["org.opencontainers.image.title"], "computed labels win over the Dockerfile's")
	require.Equal(t, "core", cf.Config.Labels["team"])
	m, err := img.Manifest()
	require.NoError(t, err)
	require.Equal(t, "x", m.Annotations["com.example.note"])
	require.Equal(t, "main", m.Annotations["org.opencontainers.image.version"])
}

func TestDestinationThatIsABaseDirectory(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s\nCOPY a.txt /etc\nCOPY a.txt /bin/tool\nCOPY --link a.txt /bin\n", e.base),
		"a.txt":      "a",
	})
	res, err := Run(context.Background(), e.opts(dir, e.host+"/into/app:v1"))
	require.NoError(t, err)
	require.Equal(t, int64(1), res.BaseReads, "the base's file list is read once")
	img := pull(t, e.host+"/into/app:v1")
	require.Contains(t, layerFiles(t, img, 1), "etc/a.txt", "into the base's /etc directory")
	require.Contains(t, layerFiles(t, img, 2), "bin/tool", "bin/tool is not a directory of the base")
	require.Contains(t, layerFiles(t, img, 3), "bin", "COPY --link never looks at the base: a file named /bin, as BuildKit writes")
}

// TestInsecurePull: kaniko's --insecure-pull lets the base images'
// registries (named by the Dockerfile, parsed once) use plain HTTP; without
// it, such a base is refused with the fix.
func TestInsecurePull(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM " + e.base + "\nCOPY a /a\n", "a": "a"})
	strict, err := registry.New(registry.Options{UserAgent: "hoist/test"})
	require.NoError(t, err)
	o := Options{Context: dir, Registry: strict, OCILayoutPath: filepath.Join(t.TempDir(), "layout")}
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "insecure-registries", "the base's registry serves plain HTTP and is not listed")

	strict, err = registry.New(registry.Options{UserAgent: "hoist/test"})
	require.NoError(t, err)
	o.Registry, o.InsecurePull = strict, true
	_, err = Run(context.Background(), o)
	require.NoError(t, err)
}

// TestRefusedPushSaysPush: a 401 on the push names the action (the
// registry's Explain took a free-form string, and build-push's "push" made
// it say "may access").
func TestRefusedPushSaysPush(t *testing.T) {
	reg := testrig.Registry(t, testrig.RegistryOptions{Users: map[string]string{"ci": "right"}})
	client, err := registry.New(registry.Options{Insecure: []string{reg.Host}, Username: "ci", Password: "CANARY-wrong-pass", UserAgent: "hoist/test"})
	require.NoError(t, err)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	_, err = Run(context.Background(), Options{Context: dir, Registry: client, Push: true, Tags: []string{reg.Host + "/team/app:1"}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "pushing to "+reg.Host+"/team/app")
	require.Contains(t, err.Error(), "may push to "+reg.Host+"/team/app")
	require.NotContains(t, err.Error(), "CANARY-wrong-pass")
	kind, subject, ok := need.Of(err)
	require.True(t, ok)
	require.Equal(t, need.RegistryPush, kind)
	require.Equal(t, reg.Host, subject)
}
