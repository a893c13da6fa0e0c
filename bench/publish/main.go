// Command publish benchmarks hoist publish against `flux push artifact`
// (fluxcd/flux2, built here from its module source) on a generated
// 500-file kustomize tree, pushing to one local docker-registry, in the
// same run. Both tools push the same tree with the same annotations, and
// the run fails unless their manifests have the same digest: the figures
// compare equal work.
//
//	go run ./bench/publish [--write] [--rounds N]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	fluxModule  = "github.com/fluxcd/flux2/v2"
	fluxVersion = "v2.9.5"
	source      = "https://github.com/acme/app"
	revision    = "main@sha1:0123456789abcdef0123456789abcdef01234567"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/publish:", err)
		os.Exit(1)
	}
}

type config struct {
	publish, flux  string
	rounds, warmup int
	apps, perApp   int
	write          bool
	results, cache string
}

func run(ctx context.Context, args []string) error {
	var c config
	fl := flag.NewFlagSet("bench/publish", flag.ContinueOnError)
	fl.StringVar(&c.publish, "publish", "", "hoist publish binary (default: built from ./actions/publish)")
	fl.StringVar(&c.flux, "flux", "", "flux binary (default: built from "+fluxModule+"@"+fluxVersion+" into .cache/bench)")
	fl.IntVar(&c.rounds, "rounds", 10, "measured rounds")
	fl.IntVar(&c.warmup, "warmup", 2, "warm-up rounds")
	fl.IntVar(&c.apps, "apps", 20, "applications in the tree (each a directory with a kustomization)")
	fl.IntVar(&c.perApp, "files", 25, "files per application (the kustomization included)")
	fl.BoolVar(&c.write, "write", false, "write the publish section of bench/RESULTS.md")
	fl.StringVar(&c.results, "results", "bench/RESULTS.md", "results file")
	fl.StringVar(&c.cache, "cache", ".cache/bench", "where the flux build is kept")
	if err := fl.Parse(args); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "bench-publish-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if c.publish == "" {
		c.publish = filepath.Join(work, "publish")
		// As the image's binaries are built (Dockerfile).
		if out, err := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", c.publish, "./actions/publish").CombinedOutput(); err != nil {
			return fmt.Errorf("building hoist publish: %v\n%s", err, out)
		}
	}
	if c.flux == "" {
		if c.flux, err = buildFlux(ctx, c.cache); err != nil {
			return err
		}
	}
	fluxVer := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(output(ctx, c.flux, "version", "--client")), "flux:"))
	loadBefore := loadAverage()

	regDir := filepath.Join(work, "registry")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		return err
	}
	reg, err := testrig.StartRegistry(ctx, regDir, testrig.RegistryOptions{Quiet: true})
	if err != nil {
		return fmt.Errorf("starting docker-registry (apt-get install -y docker-registry): %w", err)
	}
	defer reg.Stop()
	hoistProxy, err := newProxy(reg.Host)
	if err != nil {
		return err
	}
	defer hoistProxy.close()
	fluxProxy, err := newProxy(reg.Host)
	if err != nil {
		return err
	}
	defer fluxProxy.close()

	tree := filepath.Join(work, "tree")
	files, size, err := generate(tree, c.apps, c.perApp)
	if err != nil {
		return err
	}
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	env := append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home)

	hoistCmd := func(tag string, extra ...string) []string {
		return append([]string{c.publish, "--path", tree, "--tags", hoistProxy.host + "/bench/hoist:" + tag,
			"--insecure-registries", hoistProxy.host,
			"--annotations", "org.opencontainers.image.source=" + source,
			"--annotations", "org.opencontainers.image.revision=" + revision}, extra...)
	}
	fluxCmd := func(tag string) []string {
		return []string{c.flux, "push", "artifact", "oci://" + fluxProxy.host + "/bench/flux:" + tag, "--path", tree,
			"--source", source, "--revision", revision, "--reproducible", "--insecure-registry", "--output", "json"}
	}

	type sample struct{ hoist, flux time.Duration }
	var pushes []sample
	var hoistUp, fluxUp []int64
	for r := 0; r < c.warmup+c.rounds; r++ {
		// A change in one file per round: both tools upload a new layer.
		marker := filepath.Join(tree, "apps", "app-00", "round.yaml")
		if err := os.WriteFile(marker, []byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: round\ndata:\n  round: %q\n", fmt.Sprint(r))), 0o644); err != nil {
			return err
		}
		tag := fmt.Sprintf("r%d", r)
		var s sample
		var hd, fd string
		for i := 0; i < 2; i++ {
			if (i+r)%2 == 0 {
				hoistProxy.reset()
				d, out, err := timed(ctx, env, hoistCmd(tag))
				if err != nil {
					return fmt.Errorf("hoist publish: %v\n%s", err, tail(out))
				}
				s.hoist, hd = d, field(out, "digest=")
				hoistUp = append(hoistUp, hoistProxy.uploaded.Load())
			} else {
				fluxProxy.reset()
				d, out, err := timed(ctx, env, fluxCmd(tag))
				if err != nil {
					return fmt.Errorf("flux push artifact: %v\n%s", err, tail(out))
				}
				var info struct{ Digest string }
				if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &info); err != nil {
					return fmt.Errorf("flux push artifact printed no JSON: %v\n%s", err, tail(out))
				}
				s.flux, fd = d, info.Digest
				fluxUp = append(fluxUp, fluxProxy.uploaded.Load())
			}
		}
		// The same content layer and annotations. The config blobs differ in
		// one field: flux v2.9.5 (fluxcd/pkg/oci v0.68) loses the created
		// time ("0001-01-01"), fixed in fluxcd/pkg/oci v0.70, whose config
		// hoist writes.
		hm, fm := fetch(ctx, "http://"+reg.Host+"/v2/bench/hoist/manifests/"+tag), fetch(ctx, "http://"+reg.Host+"/v2/bench/flux/manifests/"+tag)
		if hd == "" || fd == "" || withoutConfig(hm) != withoutConfig(fm) {
			return fmt.Errorf("round %d: hoist pushed %q, flux %q: the same tree and annotations must give the same layer and annotations\nhoist: %s\nflux:  %s", r, hd, fd, hm, fm)
		}
		if r >= c.warmup {
			pushes = append(pushes, s)
		}
	}

	// No change: the last round's tree again, to the tag that holds it.
	last := fmt.Sprintf("r%d", c.warmup+c.rounds-1)
	var noChange []sample
	var hoistNoChangeUp, fluxNoChangeUp, fluxDiffUp int64
	var hoistNoChangeReq, fluxNoChangeReq, fluxDiffReq int64
	var diffs []time.Duration
	for r := 0; r < c.rounds; r++ {
		var s sample
		hoistProxy.reset()
		d, out, err := timed(ctx, env, hoistCmd(last, "--diff"))
		if err != nil {
			return fmt.Errorf("hoist publish --diff: %v\n%s", err, tail(out))
		}
		if !strings.Contains(out, "pushed=false") || !strings.Contains(out, "not pushed") {
			return fmt.Errorf("hoist publish --diff pushed an unchanged tree:\n%s", tail(out))
		}
		s.hoist, hoistNoChangeUp, hoistNoChangeReq = d, hoistProxy.uploaded.Load(), hoistProxy.requests.Load()
		fluxProxy.reset()
		d, out, err = timed(ctx, env, fluxCmd(last))
		if err != nil {
			return fmt.Errorf("flux push artifact (no change): %v\n%s", err, tail(out))
		}
		s.flux, fluxNoChangeUp, fluxNoChangeReq = d, fluxProxy.uploaded.Load(), fluxProxy.requests.Load()
		noChange = append(noChange, s)
		fluxProxy.reset()
		d, out, err = timed(ctx, env, []string{c.flux, "diff", "artifact", "oci://" + fluxProxy.host + "/bench/flux:" + last, "--path", tree, "--insecure-registry"})
		if err != nil {
			return fmt.Errorf("flux diff artifact: %v\n%s", err, tail(out))
		}
		diffs = append(diffs, d)
		fluxDiffUp, fluxDiffReq = fluxProxy.uploaded.Load(), fluxProxy.requests.Load()
	}

	med := func(xs []sample, f func(sample) time.Duration) time.Duration {
		var ds []time.Duration
		for _, x := range xs {
			ds = append(ds, f(x))
		}
		return median(ds)
	}
	ratios := func(xs []sample) float64 {
		var rs []float64
		for _, x := range xs {
			rs = append(rs, float64(x.hoist)/float64(x.flux))
		}
		slices.Sort(rs)
		return rs[len(rs)/2]
	}
	pushRatio := ratios(pushes)
	var b strings.Builder
	fmt.Fprintf(&b, "## publish\n\n<!-- Written by `go run ./bench/publish --write`; change the program, not this section. -->\n\n")
	fmt.Fprintf(&b, "A generated kustomize tree of %d files (%d applications, each a kustomization and %d Deployments, Services and ConfigMaps; %d KiB) pushed as a Flux OCI artifact to one local docker-registry, each tool through its own counting loopback proxy. "+
		"**hoist** runs `publish --path TREE --tags HOST/bench/hoist:rN` (with the source and revision annotations); **flux** runs `flux push artifact oci://HOST/bench/flux:rN --path TREE --source ... --revision ... --reproducible`. "+
		"Each round changes one file, so both upload a new layer; who goes first alternates. Every round both manifests must hold the same layer (byte-identical tarball) and annotations, or the run fails (their config blobs differ in one field: flux v2.9.5's fluxcd/pkg/oci v0.68 writes `created: 0001-01-01T00:00:00Z`, a bug fixed in fluxcd/pkg/oci v0.70 whose config hoist writes). "+
		"Median of %d rounds after %d warm-up rounds. Target from issue #13: hoist ≤ 0.5 × flux, and a no-change run that uploads 0 bytes.\n\n",
		files, c.apps, c.perApp-1, size/1024, c.rounds, c.warmup)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| machine | %d CPUs, %s/%s |\n| flux | %s, built from %s@%s (`CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" ./cmd/flux`) |\n| registry | docker-registry (Debian), filesystem storage, 127.0.0.1 |\n| go | %s |\n| load average (1 min) | %s before, %s after (the machine is shared) |\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, fluxVer, fluxModule, fluxVersion, runtime.Version(), loadBefore, loadAverage())
	fmt.Fprintf(&b, "| scenario | tool | median | bytes uploaded | requests |\n|---|---|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| push (one file changed) | hoist `publish` | %s | %d | |\n", ms(med(pushes, func(s sample) time.Duration { return s.hoist })), median64(hoistUp))
	fmt.Fprintf(&b, "| push (one file changed) | `flux push artifact` | %s | %d | |\n", ms(med(pushes, func(s sample) time.Duration { return s.flux })), median64(fluxUp))
	fmt.Fprintf(&b, "| no change | hoist `publish --diff` | %s | **%d** | %d |\n", ms(med(noChange, func(s sample) time.Duration { return s.hoist })), hoistNoChangeUp, hoistNoChangeReq)
	fmt.Fprintf(&b, "| no change | `flux push artifact` again | %s | %d | %d |\n", ms(med(noChange, func(s sample) time.Duration { return s.flux })), fluxNoChangeUp, fluxNoChangeReq)
	fmt.Fprintf(&b, "| no change | `flux diff artifact` (flux's way to skip) | %s | %d | %d |\n\n", ms(median(diffs)), fluxDiffUp, fluxDiffReq)
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	fmt.Fprintf(&b, "Push: median ratio hoist/flux **%.3f** — target ≤ 0.5: %s. No change: hoist uploads %d bytes — target 0: %s (it reads the tag's manifest and writes nothing; `flux push artifact` writes the manifest again).\n",
		pushRatio, verdict(pushRatio <= 0.5), hoistNoChangeUp, verdict(hoistNoChangeUp == 0))
	fmt.Print(b.String())
	if c.write {
		return writeSection(c.results, "publish", b.String())
	}
	return nil
}

// buildFlux builds the flux CLI from its module source (the module proxy's
// copy of the public repository): `go install` refuses it for its replace
// directive, and its embedded install manifests are generated by its
// Makefile, so a placeholder stands in for them (push/diff artifact never
// read them).
func buildFlux(ctx context.Context, cache string) (string, error) {
	bin := filepath.Join(cache, "flux-"+fluxVersion, "flux")
	if _, err := os.Stat(bin); err == nil {
		return filepath.Abs(bin)
	}
	fmt.Fprintf(os.Stderr, "bench/publish: building flux %s from the module proxy's source (minutes, once)\n", fluxVersion)
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", fluxModule+"@"+fluxVersion).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", fluxModule, fluxVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s gave no directory", fluxModule, fluxVersion)
	}
	src, err := os.MkdirTemp("", "flux-src-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(src, "cmd", "flux", "manifests"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "cmd", "flux", "manifests", "placeholder.yaml"), []byte("# not needed to push artifacts\n"), 0o644); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.VERSION="+strings.TrimPrefix(fluxVersion, "v"), "-o", abs, "./cmd/flux")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building flux: %v\n%s", err, tail(string(out)))
	}
	return abs, nil
}

// generate writes apps × perApp files: per application a kustomization and
// Deployments, Services and ConfigMaps of realistic size.
func generate(dir string, apps, perApp int) (files int, size int64, err error) {
	for a := 0; a < apps; a++ {
		app := filepath.Join(dir, "apps", fmt.Sprintf("app-%02d", a))
		if err := os.MkdirAll(app, 0o755); err != nil {
			return 0, 0, err
		}
		var res []string
		for f := 1; f < perApp; f++ {
			var name, body string
			switch f % 3 {
			case 0:
				name = fmt.Sprintf("deployment-%02d.yaml", f)
				body = fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-%02d-%02d\n  labels:\n    app.kubernetes.io/name: svc-%02d-%02d\n    app.kubernetes.io/part-of: app-%02d\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: svc-%02d-%02d\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: svc-%02d-%02d\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/svc-%02d:1.4.%d\n          ports:\n            - containerPort: 8080\n          resources:\n            requests: {cpu: 100m, memory: 128Mi}\n            limits: {memory: 256Mi}\n          readinessProbe:\n            httpGet: {path: /healthz, port: 8080}\n", a, f, a, f, a, a, f, a, f, f, a)
			case 1:
				name = fmt.Sprintf("service-%02d.yaml", f)
				body = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%02d-%02d\nspec:\n  selector:\n    app.kubernetes.io/name: svc-%02d-%02d\n  ports:\n    - port: 80\n      targetPort: 8080\n", a, f, a, f)
			default:
				name = fmt.Sprintf("config-%02d.yaml", f)
				body = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-%02d-%02d\ndata:\n  settings.yaml: |\n%s", a, f, strings.Repeat(fmt.Sprintf("    key-%02d-%02d: value\n", a, f), 20))
			}
			if err := os.WriteFile(filepath.Join(app, name), []byte(body), 0o644); err != nil {
				return 0, 0, err
			}
			res = append(res, name)
			files++
			size += int64(len(body))
		}
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + strings.Join(res, "\n  - ") + "\n"
		if err := os.WriteFile(filepath.Join(app, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			return 0, 0, err
		}
		files++
		size += int64(len(k))
	}
	return files, size, nil
}

// proxy is a counting reverse proxy in front of the registry: requests,
// and bytes the tool uploads (request bodies).
type proxy struct {
	host     string
	srv      *http.Server
	requests atomic.Int64
	uploaded atomic.Int64
}

func newProxy(target string) (*proxy, error) {
	u, _ := url.Parse("http://" + target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{host: l.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, n: &p.uploaded}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *proxy) reset() { p.requests.Store(0); p.uploaded.Store(0) }
func (p *proxy) close() { _ = p.srv.Close() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func timed(ctx context.Context, env []string, argv []string) (time.Duration, string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = filepath.Dir(argv[slices.Index(argv, "--path")+1]) // the tree's parent, outside any git repository
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), out.String(), err
}

// loadAverage is the 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// withoutConfig is a manifest's JSON with the config descriptor left out.
func withoutConfig(manifest string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(manifest), &m); err != nil {
		return manifest
	}
	delete(m, "config")
	b, _ := json.Marshal(m)
	return string(b)
}

// fetch reads a manifest (for the error that shows why two differ).
func fetch(ctx context.Context, u string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func output(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return string(out)
}

func field(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix)
		}
	}
	return ""
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func median64(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// writeSection replaces (or appends) the "## name" section of the results
// file.
func writeSection(path, name, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	head := "## " + name + "\n"
	start := strings.Index(s, head)
	if start < 0 {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		return os.WriteFile(path, []byte(s+body), 0o644)
	}
	end := len(s)
	if next := strings.Index(s[start+len(head):], "\n## "); next >= 0 {
		end = start + len(head) + next + 1
		body += "\n"
	}
	return os.WriteFile(path, []byte(s[:start]+body+s[end:]), 0o644)
}
