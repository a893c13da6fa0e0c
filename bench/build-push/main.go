// Command build-push benchmarks hoist's build-push against kaniko v1.24.0
// in the same run: a COPY-only build (a busybox base, a 2,000-file
// context), cold (empty cache repository) and warm (the cache repository
// of the cold build, a fresh process and a new destination), both tools
// pushing with a layer cache to one local registry, each through its own
// counting loopback proxy. It prints a Markdown report and, with --write,
// replaces the "## build-push" section of bench/RESULTS.md.
//
// kaniko is archived, has no image that can be pulled here and is not on the
// module proxy, so the bench expects an image of kaniko's v1.24.0 executor
// (ENTRYPOINT /kaniko/executor) already loaded into DOCKER_HOST's engine
// under the name given by --kaniko-image; hoist ships no way to build it.
// kaniko runs there as its own container with --network host, as in a
// GitLab docker-executor job.
//
//	go run ./bench/build-push [--rounds 3] [--files 2000] [--write]
package main

import (
	"archive/tar"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const kanikoImage = "hoist-bench/kaniko:v1.24.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/build-push:", err)
		os.Exit(1)
	}
}

type config struct {
	root        string
	rounds      int
	files       int
	write       bool
	kanikoImage string
	timeout     time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("bench/build-push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.rounds, "rounds", 3, "measured rounds (each: hoist cold, hoist warm, kaniko cold, kaniko warm)")
	fs.IntVar(&c.files, "files", 2000, "files in the build context")
	fs.BoolVar(&c.write, "write", false, "replace the build-push section of bench/RESULTS.md")
	fs.StringVar(&c.kanikoImage, "kaniko-image", kanikoImage, "the kaniko v1.24.0 executor image in DOCKER_HOST's engine")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound of the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	c.root = filepath.Dir(strings.TrimSpace(string(out)))
	if os.Getenv("DOCKER_HOST") == "" {
		return fmt.Errorf("DOCKER_HOST is not set: kaniko runs in the rig's Docker engine (test/rig/up.sh, then . .cache/rig/env)")
	}
	work, err := os.MkdirTemp("", "bench-build-push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "build-push")
	if o, err := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./actions/build-push").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./actions/build-push: %v\n%s", err, o)
	}
	if o, err := exec.CommandContext(ctx, "docker", "image", "inspect", c.kanikoImage).CombinedOutput(); err != nil {
		return fmt.Errorf("kaniko image %s is not in the engine (%s): load an image of kaniko's v1.24.0 executor under that name, or name yours with --kaniko-image", c.kanikoImage, strings.TrimSpace(string(o)))
	}

	if err := os.MkdirAll(filepath.Join(work, "registry"), 0o755); err != nil {
		return err
	}
	reg, err := testrig.StartRegistry(ctx, filepath.Join(work, "registry"), testrig.RegistryOptions{Quiet: true})
	if err != nil {
		return err
	}
	defer reg.Stop()
	hoistProxy, kanikoProxy := newProxy(reg.Host), newProxy(reg.Host)
	defer hoistProxy.Close()
	defer kanikoProxy.Close()
	if err := pushBase(ctx, reg.Host); err != nil {
		return err
	}
	ctxDir := filepath.Join(work, "context")
	size, err := makeContext(ctxDir, c.files)
	if err != nil {
		return err
	}

	type sample struct{ hoist, kaniko [2]result }
	var samples []sample
	start := time.Now()
	for r := 0; r < c.rounds; r++ {
		var s sample
		for phase := 0; phase < 2; phase++ { // cold, warm
			tag := fmt.Sprintf("r%d-%s", r, []string{"cold", "warm"}[phase])
			h, err := measure(hoistProxy, func() error {
				return cmd(ctx, "", bin, "--context", ctxDir, "--tags", hoistProxy.host+"/hoist/app:"+tag, "--build-arg", "BASE="+hoistProxy.host+"/base/busybox:1",
					"--cache", "--cache-repo", fmt.Sprintf("%s/hoist/cache-r%d", hoistProxy.host, r), "--insecure-registries", hoistProxy.host)
			})
			if err != nil {
				return fmt.Errorf("hoist %s: %w", tag, err)
			}
			k, err := measure(kanikoProxy, func() error {
				return cmd(ctx, "", "docker", "run", "--rm", "--network", "host", "-v", ctxDir+":/workspace:ro", c.kanikoImage,
					"--context", "dir:///workspace", "--dockerfile", "/workspace/Dockerfile",
					"--destination", kanikoProxy.host+"/kaniko/app:"+tag, "--build-arg", "BASE="+kanikoProxy.host+"/base/busybox:1",
					"--cache=true", "--cache-copy-layers=true", "--cache-repo", fmt.Sprintf("%s/kaniko/cache-r%d", kanikoProxy.host, r),
					"--insecure", "--insecure-pull", "--skip-tls-verify", "--skip-tls-verify-pull")
			})
			if err != nil {
				return fmt.Errorf("kaniko %s: %w", tag, err)
			}
			s.hoist[phase], s.kaniko[phase] = h, k
		}
		samples = append(samples, s)
	}
	elapsed := time.Since(start)

	var b strings.Builder
	b.WriteString("## build-push\n\n<!-- Written by `go run ./bench/build-push --write`; change the program, not this section. -->\n\n")
	fmt.Fprintf(&b, "Per round, on one local registry (Debian's docker-registry): the Dockerfile `FROM <registry>/base/busybox:1` + `COPY app/ /app/` with a context of %d files (%.1f MB); "+
		"**hoist** runs `build-push --cache --cache-repo <repo>/cache-rN`; **kaniko** v1.24.0 (built from source) runs in the rig's Docker engine as its own container with `--network host`, "+
		"`--cache=true --cache-copy-layers=true --cache-repo <repo>/cache-rN`. *Cold*: an empty cache repository; *warm*: the same cache repository, a new process (no local state) and a new tag. "+
		"Each tool reaches the registry through its own counting proxy. Targets: cold ≤ 0.5 × kaniko; warm ≤ 0.2 × kaniko with 0 layer bytes uploaded.\n\n", c.files, float64(size)/1e6)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| machine | %d CPUs, %s/%s |\n| rounds | %d |\n| command | `go run ./bench/build-push --write` (%s) |\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, c.rounds, elapsed.Round(time.Second))
	b.WriteString("| phase | tool | median | min | bytes uploaded (median) | bytes downloaded (median) |\n|---|---|---:|---:|---:|---:|\n")
	ratios := map[string]float64{}
	for phase, pn := range []string{"cold", "warm"} {
		var hs, ks []result
		for _, s := range samples {
			hs, ks = append(hs, s.hoist[phase]), append(ks, s.kaniko[phase])
		}
		for _, row := range []struct {
			tool string
			rs   []result
		}{{"hoist `build-push`", hs}, {"kaniko", ks}} {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", pn, row.tool, median(row.rs, dur).Round(time.Millisecond), minDur(row.rs).Round(time.Millisecond),
				bytesStr(median(row.rs, up)), bytesStr(median(row.rs, down)))
		}
		ratios[pn] = float64(median(hs, dur)) / float64(median(ks, dur))
	}
	fmt.Fprintf(&b, "\nRatio hoist/kaniko (medians): cold **%.3f** (target ≤ 0.5: %s), warm **%.3f** (target ≤ 0.2: %s).\n",
		ratios["cold"], met(ratios["cold"] <= 0.5), ratios["warm"], met(ratios["warm"] <= 0.2))
	fmt.Fprint(stdout, b.String())
	if c.write {
		return writeSection(filepath.Join(c.root, "bench", "RESULTS.md"), "## build-push", b.String())
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

type result struct {
	d        time.Duration
	up, down int64
}

func dur(r result) int64  { return int64(r.d) }
func up(r result) int64   { return r.up }
func down(r result) int64 { return r.down }

func median(rs []result, f func(result) int64) time.Duration {
	v := make([]int64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return time.Duration(v[len(v)/2])
}

func minDur(rs []result) time.Duration {
	m := rs[0].d
	for _, r := range rs {
		m = min(m, r.d)
	}
	return m
}

func bytesStr(d time.Duration) string {
	n := int64(d)
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func measure(p *proxy, f func() error) (result, error) {
	p.reset()
	start := time.Now()
	err := f()
	return result{d: time.Since(start), up: p.up.Load(), down: p.down.Load()}, err
}

func cmd(ctx context.Context, dir, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "GITHUB_ACTIONS=", "GITLAB_CI=")
	out, err := c.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		return fmt.Errorf("%s: %w\n%s", name, err, tail)
	}
	return nil
}

// proxy is a reverse proxy counting blob bytes: uploaded (request bodies
// of blob uploads) and downloaded (responses of blob GETs).
type proxy struct {
	*httptest.Server
	host     string
	up, down atomic.Int64
}

func (p *proxy) reset() { p.up.Store(0); p.down.Store(0) }

func newProxy(target string) *proxy {
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &proxy{}
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodGet && strings.Contains(r.Request.URL.Path, "/blobs/sha256:") {
			r.Body = &counting{ReadCloser: r.Body, n: &p.down}
		}
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads") && r.Body != nil {
			r.Body = &counting{ReadCloser: r.Body, n: &p.up}
		}
		rp.ServeHTTP(w, r)
	}))
	p.host = strings.TrimPrefix(p.URL, "http://")
	return p
}

type counting struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *counting) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// pushBase pushes a busybox base: the host's static busybox and /etc/passwd.
func pushBase(ctx context.Context, host string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox-static is needed for the base image: %w", err)
	}
	dir, err := os.MkdirTemp("", "bench-base-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	layerTar := filepath.Join(dir, "layer.tar")
	if err := writeTar(layerTar, map[string][]byte{"bin/busybox": data, "etc/passwd": []byte("root:x:0:0:root:/root:/bin/sh\n")}); err != nil {
		return err
	}
	l, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"/bin/busybox", "sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.ParseReference(host+"/base/busybox:1", name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithContext(ctx))
}

// makeContext writes the Dockerfile and n files of 1-8 kB (fixed seed).
func makeContext(dir string, n int) (int64, error) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, "app", fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%04d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		b := make([]byte, 1024+rnd.IntN(7*1024))
		for j := range b {
			b[j] = byte('a' + rnd.IntN(26))
		}
		total += int64(len(b))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return 0, err
		}
	}
	df := "ARG BASE\nFROM ${BASE}\nCOPY app/ /app/\nCMD [\"/bin/busybox\", \"ls\", \"/app\"]\n"
	return total, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
}

func writeTar(path string, files map[string][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		if d := filepath.Dir(n); !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(files[n]))}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// writeSection replaces (or appends) the section starting with heading,
// up to the next "## " heading.
func writeSection(path, heading, body string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	start := strings.Index(s, heading+"\n")
	if start < 0 {
		s = strings.TrimRight(s, "\n") + "\n\n" + body
	} else {
		end := strings.Index(s[start+len(heading):], "\n## ")
		if end < 0 {
			s = s[:start] + body
		} else {
			s = s[:start] + body + "\n" + s[start+len(heading)+end+1:]
		}
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
