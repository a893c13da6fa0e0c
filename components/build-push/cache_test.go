package buildpush

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

// uploads returns the digests PUT to blob uploads (bytes sent, not mounts).
func (r *recorder) uploadedDigests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.puts...)
}

func TestCacheFullHitMovesNoLayerBytes(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{
		"Dockerfile": "FROM " + e.base + "\nCOPY --link a.txt /a\nCOPY dir/ /dir/\n",
		"a.txt":      "a",
		"dir/b":      "b",
	}
	build := func(tag string) Result {
		dir := t.TempDir()
		writeTree(t, dir, files)
		o := e.opts(dir, tag)
		o.Cache = true
		o.CacheRepo = e.host + "/cache/app"
		o.Now = func() time.Time { return time.Unix(1700000000, 0) } // the same created time
		res, err := Run(context.Background(), o)
		require.NoError(t, err)
		return res
	}
	cold := build(e.host + "/first/app:v1")
	require.Equal(t, 2, cold.LayersBuilt)
	require.Zero(t, cold.CacheHits)
	coldImg := pull(t, e.host+"/first/app:v1")
	coldLayers, err := coldImg.Layers()
	require.NoError(t, err)
	for _, l := range coldLayers[1:] {
		d, err := l.Digest()
		require.NoError(t, err)
		n := 0
		for _, up := range e.rec.uploadedDigests() {
			if up == d.String() {
				n++
			}
		}
		require.Equal(t, 1, n, "a built layer is uploaded once: to the cache, then mounted into the destination")
	}

	e.rec.reset()
	warm := build(e.host + "/second/app:v1")
	require.Zero(t, warm.LayersBuilt)
	require.Equal(t, 2, warm.CacheHits)
	require.Equal(t, cold.Digest, warm.Digest, "assembled from the cached layers, byte for byte")
	img := pull(t, e.host+"/second/app:v1")
	layers, err := img.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		d, err := l.Digest()
		require.NoError(t, err)
		require.NotContains(t, e.rec.uploadedDigests(), d.String(), "a layer was uploaded instead of mounted")
		require.False(t, e.rec.fetched(d.String()), "a layer was downloaded")
	}
}

func TestCacheKeys(t *testing.T) {
	e := newEnv(t)
	dockerfile := `FROM scratch AS gen
ARG GEN=1
COPY gen-${GEN}.txt /g

FROM scratch
ARG USED=a
ARG UNUSED=x
COPY --from=gen /g /g
COPY ${USED}.txt /u
COPY static.txt /s
`
	build := func(args map[string]string) Result {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"Dockerfile": dockerfile, "gen-1.txt": "one", "gen-2.txt": "two", "a.txt": "same", "b.txt": "same", "static.txt": "s"})
		o := e.opts(dir, e.host+"/keys/app:v1")
		o.Cache, o.CacheRepo, o.BuildArgs = true, e.host+"/keys/cache", args
		o.Now = func() time.Time { return time.Unix(1700000000, 0) }
		res, err := Run(context.Background(), o)
		require.NoError(t, err)
		return res
	}
	first := build(nil)
	require.Equal(t, 4, first.LayersBuilt)

	unused := build(map[string]string{"UNUSED": "changed"})
	require.Equal(t, 4, unused.CacheHits, "a build arg no instruction uses rebuilds nothing")
	require.Zero(t, unused.LayersBuilt)
	// The image itself differs: its history records "ARG UNUSED=changed",
	// as BuildKit's does.

	used := build(map[string]string{"USED": "b"})
	require.Equal(t, 2, used.CacheHits, "gen and COPY --from hit")
	require.Equal(t, 2, used.LayersBuilt, "COPY ${USED}.txt misses although b.txt has the same bytes, and so does the next step")

	gen := build(map[string]string{"GEN": "2"})
	require.Equal(t, 4, gen.LayersBuilt, "a changed stage misses, and so does COPY --from of it and what follows")
}

func TestCacheWriteFailureOnlyWarns(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	o := e.opts(dir, e.host+"/warn/app:v1")
	o.Cache = true
	o.CacheRepo = "127.0.0.1:1/cache/app" // nothing listens there
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, 1, res.LayersBuilt)
	require.True(t, strings.HasPrefix(res.Digest, "sha256:"))
	_ = http.MethodPut
}

func TestCacheTTL(t *testing.T) {
	e := newEnv(t)
	now := time.Unix(1700000000, 0)
	build := func() Result {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
		o := e.opts(dir, e.host+"/ttl/app:v1")
		o.Cache, o.CacheTTL = true, time.Hour
		o.Now = func() time.Time { return now }
		res, err := Run(context.Background(), o)
		require.NoError(t, err)
		return res
	}
	require.Equal(t, 1, build().LayersBuilt, "cache-repo defaults to <image>/cache")
	now = now.Add(30 * time.Minute)
	require.Equal(t, 1, build().CacheHits)
	now = now.Add(2 * time.Hour)
	require.Equal(t, 1, build().LayersBuilt, "an entry older than cache-ttl is rebuilt")
	r, err := name.NewRepository(e.host+"/ttl/app/cache", name.Insecure)
	require.NoError(t, err)
	tags, err := remote.List(r)
	require.NoError(t, err)
	require.Len(t, tags, 1)
}
