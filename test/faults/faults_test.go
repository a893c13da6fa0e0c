// Package faults runs hoist's registry tools against Debian's real
// registry through a proxy that injects random faults, and against a
// registry killed in the middle of a push. Every tag written must point at
// a manifest whose blobs all exist. The tests need docker-registry (`make
// test` installs it); without it they fail, and -short skips them.
package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	buildpush "github.com/hoist-ci/hoist/components/build-push"
	"github.com/hoist-ci/hoist/components/retag"
	"github.com/hoist-ci/hoist/internal/registry"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// runs is the number of build-push runs and of retag runs.
const runs = 15

// faultRate is the share of requests the proxy faults.
const faultRate = 0.10

// parallel is the number of runs at a time.
const parallel = 3

// retry is the documented default of attempts (5) with shorter delays:
// Retry-After (1 s) is still honoured.
var retry = registry.Retry{Attempts: 5, Initial: 50 * time.Millisecond, Max: 2 * time.Second}

// logSink keeps the log of every run and counts the retries in it.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, "msg=\"retrying") && strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// reasons tallies the retries by their reason.
func (l *logSink) reasons() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, line := range strings.Split(l.b.String(), "\n") {
		if !strings.Contains(line, "msg=\"retrying") {
			continue
		}
		_, rest, ok := strings.Cut(line, " reason=")
		if !ok {
			continue
		}
		reason := rest
		if strings.HasPrefix(rest, `"`) {
			reason, _, _ = strings.Cut(rest[1:], `"`)
		} else {
			reason, _, _ = strings.Cut(rest, " ")
		}
		if i := strings.Index(reason, " at byte"); i >= 0 {
			reason = reason[:i] + " mid-body"
		}
		out[reason]++
	}
	return out
}

func requireRig(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs docker-registry (the real registry)")
	}
}

func writeContext(t *testing.T, dockerfile string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	for n, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	return dir
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// TestRandomFaultsHeal: 15 build-push runs and 15 retag runs through a
// proxy that faults 10% of requests (503, 429 with Retry-After, reset
// before the headers, reset in the middle of a body) all succeed, and
// every tag in the registry points at a manifest whose blobs all exist.
func TestRandomFaultsHeal(t *testing.T) {
	requireRig(t)
	reg := testrig.Registry(t, testrig.RegistryOptions{Quiet: true})
	// Two proxies in front of one registry are two registries to hoist: a
	// retag from one to the other copies the blobs (GETs and uploads).
	a := testrig.RandomFaultProxy(t, reg.Host, testrig.FaultOptions{Rate: faultRate})
	b := testrig.RandomFaultProxy(t, reg.Host, testrig.FaultOptions{Rate: faultRate})
	base, err := testrig.BusyboxImage()
	require.NoError(t, err)
	testrig.PushImage(t, base, reg.Host+"/base/busybox:1")

	logs := &logSink{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	client, err := registry.New(registry.Options{Insecure: []string{a.Host, b.Host}, Retry: retry, Log: logger})
	require.NoError(t, err)

	start := time.Now()
	var built, retagged atomic.Int32
	// Three runs at a time, as concurrent pipelines would.
	var g errgroup.Group
	g.SetLimit(parallel)
	for i := range runs {
		// --chown=app reads the base's /etc/passwd: its layer is fetched.
		dir := writeContext(t, fmt.Sprintf("FROM %s/base/busybox:1\nCOPY --chown=app data.bin /srv/run-%d.bin\n", a.Host, i),
			map[string][]byte{"data.bin": randomBytes(t, 256<<10)})
		g.Go(func() error {
			res, err := buildpush.Run(t.Context(), buildpush.Options{
				Context: dir, Push: true, Registry: client, Log: logger,
				Tags: []string{fmt.Sprintf("%s/team/app:run-%d", a.Host, i), fmt.Sprintf("%s/other/app:run-%d", a.Host, i)},
			})
			if err != nil {
				return fmt.Errorf("build-push run %d: %w", i, err)
			}
			if len(res.Tags) != 2 {
				return fmt.Errorf("build-push run %d: tags %v", i, res.Tags)
			}
			built.Add(1)
			return nil
		})
	}
	require.NoError(t, g.Wait(), "%s", a.Report())
	for i := range runs {
		g.Go(func() error {
			res, err := retag.Run(t.Context(), retag.Options{
				Source:        fmt.Sprintf("%s/team/app:run-%d", a.Host, i),
				Tags:          []string{fmt.Sprintf("1.%d.0", i)},
				SemverAliases: true,
				Destinations:  []string{a.Host + "/team/app", b.Host + "/promoted/app"},
				Registry:      client, Log: logger,
			})
			if err != nil {
				return fmt.Errorf("retag run %d: %w", i, err)
			}
			if len(res.Tags) == 0 {
				return fmt.Errorf("retag run %d: no tags", i)
			}
			retagged.Add(1)
			return nil
		})
	}
	require.NoError(t, g.Wait(), "%s; %s", a.Report(), b.Report())
	elapsed := time.Since(start)

	tags := verifyRepositories(t, reg.Host, "team/app", "other/app", "promoted/app")
	// team/app: run-N, 1.N.0, 1.N, 1, latest; other/app: run-N;
	// promoted/app: 1.N.0, 1.N, 1, latest.
	require.Equal(t, (3*runs+2)+runs+(2*runs+2), tags)

	faults := map[testrig.Fault]int{}
	for _, p := range []*testrig.Proxy{a, b} {
		for k, v := range p.FaultCounts() {
			faults[k] += v
		}
	}
	t.Logf("fault run: %d build-push and %d retag runs succeeded in %s; %d requests, %d faults %v; "+
		"%d retries %v",
		built.Load(), retagged.Load(), elapsed.Round(100*time.Millisecond), a.Requests()+b.Requests(), a.Faults()+b.Faults(), faults,
		logs.count(""), logs.reasons())
	require.Positive(t, faults[testrig.FaultResetMidBody], "some body was cut")
	require.Positive(t, logs.count("of the body"), "a cut body was resumed")
}

// verifyRepositories checks, straight at the registry, that every tag of
// the repositories points at a manifest (or index) whose blobs all exist,
// and returns the number of tags.
func verifyRepositories(t *testing.T, host string, repos ...string) int {
	t.Helper()
	n := 0
	for _, r := range repos {
		repo, err := name.NewRepository(host+"/"+r, name.Insecure)
		require.NoError(t, err)
		tags, err := remote.List(repo, remote.WithContext(t.Context()))
		require.NoError(t, err, r)
		for _, tag := range tags {
			desc, err := remote.Get(repo.Tag(tag), remote.WithContext(t.Context()))
			require.NoError(t, err, "%s:%s", r, tag)
			verifyDescriptor(t, repo, desc)
			n++
		}
	}
	return n
}

func verifyDescriptor(t *testing.T, repo name.Repository, desc *remote.Descriptor) {
	t.Helper()
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		require.NoError(t, err)
		im, err := idx.IndexManifest()
		require.NoError(t, err)
		for _, m := range im.Manifests {
			d, err := remote.Get(repo.Digest(m.Digest.String()), remote.WithContext(t.Context()))
			require.NoError(t, err, "%s@%s", repo, m.Digest)
			verifyDescriptor(t, repo, d)
		}
		return
	}
	img, err := desc.Image()
	require.NoError(t, err)
	m, err := img.Manifest()
	require.NoError(t, err)
	blobs := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, d := range blobs {
		url := fmt.Sprintf("http://%s/v2/%s/blobs/%s", repo.RegistryStr(), repo.RepositoryStr(), d)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, url, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "blob %s of %s@%s", d, repo, desc.Digest)
	}
}

// killOnUpload kills the registry once an upload's body is under way: the
// PATCH that streams a layer has sent its first bytes.
type killOnUpload struct {
	next   http.RoundTripper
	reg    *testrig.Reg
	armed  atomic.Bool
	killed atomic.Bool
}

func (k *killOnUpload) RoundTrip(req *http.Request) (*http.Response, error) {
	if k.armed.Load() && req.Method == http.MethodPatch && req.Body != nil && !k.killed.Load() {
		req = req.Clone(req.Context())
		req.Body = &killAfter{ReadCloser: req.Body, left: 64 << 10, kill: func() {
			if k.killed.CompareAndSwap(false, true) {
				k.reg.Kill()
			}
		}}
	}
	return k.next.RoundTrip(req)
}

type killAfter struct {
	io.ReadCloser
	left int
	kill func()
}

func (r *killAfter) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if r.left -= n; r.left <= 0 {
		r.kill()
	}
	return n, err
}

// TestRegistryKilledMidPush: the registry dies while a layer is being
// uploaded. build-push fails with an error that says nothing answered, no
// tag is written, and once the registry is back the same build completes.
func TestRegistryKilledMidPush(t *testing.T) {
	requireRig(t)
	reg := testrig.Registry(t, testrig.RegistryOptions{Quiet: true})
	tap := &killOnUpload{next: http.DefaultTransport.(*http.Transport).Clone(), reg: reg}
	logs := &logSink{}
	client, err := registry.New(registry.Options{
		Insecure: []string{reg.Host}, Transport: tap,
		Retry: registry.Retry{Attempts: 5, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		Log:   slog.New(slog.NewTextHandler(logs, nil)),
	})
	require.NoError(t, err)
	dir := writeContext(t, "FROM scratch\nCOPY data.bin /data.bin\n", map[string][]byte{"data.bin": randomBytes(t, 4<<20)})
	tag := reg.Host + "/team/app:1"
	opts := buildpush.Options{Context: dir, Push: true, Registry: client, Tags: []string{tag}}

	tap.armed.Store(true)
	res, err := buildpush.Run(context.Background(), opts)
	require.True(t, tap.killed.Load(), "the registry was killed during the upload")
	require.Error(t, err)
	for _, want := range []string{"pushing " + tag, "connection refused", "giving up after 5 attempts", "nothing answered at " + reg.Host, "check that the registry is running"} {
		require.ErrorContains(t, err, want)
	}
	require.Empty(t, res.Tags, "no tag is claimed")
	// The documented 5 attempts per request (uploads run side by side).
	require.Positive(t, logs.count("after a refused connection (attempt 5/5)"), logs.b.String())
	require.Zero(t, logs.count("attempt 6/"))

	tap.armed.Store(false)
	require.NoError(t, reg.Restart(t.Context()))
	repo, err := name.NewRepository(reg.Host+"/team/app", name.Insecure)
	require.NoError(t, err)
	_, err = remote.Head(repo.Tag("1"), remote.WithContext(t.Context()))
	require.ErrorContains(t, err, "404", "no tag was written")

	res, err = buildpush.Run(context.Background(), opts)
	require.NoError(t, err, "the rerun completes")
	require.Equal(t, []string{tag}, res.Tags)
	require.Equal(t, 1, verifyRepositories(t, reg.Host, "team/app"))
}
