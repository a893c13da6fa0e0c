// Command build-push benchmarks hoist's build-push against kaniko v1.24.0
// and buildah in the same run, on one local registry (Debian's
// docker-registry), each tool through its own counting loopback proxy:
//
//   - copy, copy-warm: a COPY-only build (a busybox base, a 2,000-file
//     context), cold (an empty cache repository) and warm (the cache
//     repository of the cold build, a fresh process, a new tag);
//   - busybox-run (a): a busybox base, a RUN writing 2,000 files, a COPY
//     of 400 files;
//   - debian (b): a debootstrap Debian base (~200 MB, ~7k files), a small
//     RUN, a COPY of 400 files, a RUN reading both;
//   - debian-warm (c): (b) again from its cache repository with no local
//     state.
//
// Every tool's image is pulled back and checked (the files its RUN and
// COPY steps wrote) each round; a wrong image fails the run. It prints a
// Markdown report and, with --write, replaces the "## build-push" section
// of bench/RESULTS.md and writes the chart docs/bench/build-push.svg.
//
// kaniko is archived, has no image that can be pulled here and is not on
// the module proxy, so the bench expects an image of kaniko's v1.24.0
// executor (ENTRYPOINT /kaniko/executor) already loaded into DOCKER_HOST's
// engine under the name given by --kaniko-image; hoist ships no way to
// build it. kaniko runs there as its own container with --network host, as
// in a GitLab docker-executor job. buildah runs on the host (root,
// --isolation chroot, the vfs driver, a fresh storage root per build).
//
//	go run ./bench/build-push [--rounds 3] [--scenarios ...] [--tools ...] [--write]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

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
	hoist       string
	buildah     string
	scenarios   []string
	tools       []string
	logs        string
	timeout     time.Duration
}

var (
	allScenarios = []string{"copy", "copy-warm", "busybox-run", "debian", "debian-warm"}
	allTools     = []string{"hoist", "hoist-disk", "kaniko", "kaniko-default", "buildah"}
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	var scenarioList, toolList string
	fs := flag.NewFlagSet("bench/build-push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.rounds, "rounds", 3, "measured rounds (each: every scenario, every tool, tools in turn first)")
	fs.IntVar(&c.files, "files", 2000, "files in the context of the copy scenarios")
	fs.BoolVar(&c.write, "write", false, "replace the build-push section of bench/RESULTS.md and write docs/bench/build-push.svg")
	fs.StringVar(&c.kanikoImage, "kaniko-image", kanikoImage, "the kaniko v1.24.0 executor image in DOCKER_HOST's engine")
	fs.StringVar(&c.hoist, "hoist", "", "hoist's build-push binary (default: built from ./actions/build-push)")
	fs.StringVar(&c.buildah, "buildah", "buildah", "buildah binary")
	fs.StringVar(&scenarioList, "scenarios", strings.Join(allScenarios, ","), "scenarios to run (a warm one needs its cold one)")
	fs.StringVar(&toolList, "tools", strings.Join(allTools, ","), "tools to run")
	fs.StringVar(&c.logs, "logs", "", "directory for every build's log (default: <repo>/.cache/bench/logs)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "bound of the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.scenarios, c.tools = splitList(scenarioList), splitList(toolList)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	c.root = filepath.Dir(strings.TrimSpace(string(out)))
	if c.logs == "" {
		c.logs = filepath.Join(c.root, ".cache", "bench", "logs")
	}
	scs, err := selectScenarios(scenarios(c.files), c.scenarios)
	if err != nil {
		return err
	}
	for _, t := range c.tools {
		if !slices.Contains(allTools, t) {
			return fmt.Errorf("--tools: unknown tool %q (known: %s)", t, strings.Join(allTools, ", "))
		}
	}
	if c.write && len(c.tools) != len(allTools) {
		return errors.New("--write needs every tool (--tools " + strings.Join(allTools, ",") + ")")
	}
	if err := os.MkdirAll(c.logs, 0o755); err != nil {
		return fmt.Errorf("creating the log directory: %w", err)
	}

	work, err := os.MkdirTemp("", "bench-build-push-")
	if err != nil {
		return err
	}
	defer removeTree(work)
	tools, err := setupTools(ctx, c, work)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Join(work, "registry"), 0o755); err != nil {
		return err
	}
	reg, err := testrig.StartRegistry(ctx, filepath.Join(work, "registry"), testrig.RegistryOptions{Quiet: true})
	if err != nil {
		return err
	}
	defer reg.Stop()
	proxies := map[string]*proxy{}
	for _, t := range tools {
		p := newProxy(reg.Host)
		defer p.Close()
		proxies[t.name] = p
	}
	bases, err := pushBases(ctx, c.root, reg.Host, scs, stderr)
	if err != nil {
		return err
	}
	ctxDirs := map[string]string{}
	sizes := map[string]int64{}
	for _, sc := range scs {
		if sc.warmOf != "" {
			ctxDirs[sc.id] = ctxDirs[sc.warmOf]
			continue
		}
		dir := filepath.Join(work, "context-"+sc.id)
		if sizes[sc.id], err = makeContext(dir, sc.dockerfile, sc.files); err != nil {
			return err
		}
		ctxDirs[sc.id] = dir
	}

	res := results{}
	loadStart := loadAverage()
	start := time.Now()
	for r := 0; r < c.rounds; r++ {
		for si, sc := range scs {
			order := rotate(tools, r+si)
			for _, t := range order {
				j := job{sc: sc, round: r, ctxDir: ctxDirs[sc.id], host: proxies[t.name].host}
				cacheOf := sc.id
				if sc.warmOf != "" {
					cacheOf = sc.warmOf
				}
				j.ref = fmt.Sprintf("%s/%s/%s:r%d", j.host, t.name, sc.id, r)
				j.cacheRepo = fmt.Sprintf("%s/%s/%s-cache-r%d", j.host, t.name, cacheOf, r)
				j.baseRef = j.host + "/" + sc.base
				// Write back what earlier builds left dirty (buildah's vfs
				// copies, removed scratch trees) so that no tool pays for
				// another's writes.
				unix.Sync()
				rn, err := measureJob(ctx, c, work, t, j, proxies[t.name], reg.Host, bases[sc.base])
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r+1, sc.id, t.name, err)
				}
				fmt.Fprintf(stderr, "round %d %-12s %-10s %8s  layers ↑%s ↓%s  %d requests  rss %s  /dev/shm +%s\n", r+1, sc.id, t.name,
					rn.d.Round(time.Millisecond), bytesStr(rn.layerUp), bytesStr(rn.layerDown), rn.requests.Total(), rssStr(rn.rss), rssStr(rn.shm))
				res.add(sc.id, t.name, rn)
			}
		}
	}
	elapsed := time.Since(start)

	rep := report{cfg: c, scenarios: scs, tools: tools, res: res, sizes: sizes, elapsed: elapsed, date: time.Now().UTC(),
		loadStart: loadStart, loadEnd: loadAverage(), machine: fmt.Sprintf("%d CPUs, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)}
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if c.write {
		if err := writeSection(filepath.Join(c.root, "bench", "RESULTS.md"), "## build-push", md); err != nil {
			return err
		}
		svg := filepath.Join(c.root, "docs", "bench", "build-push.svg")
		if err := os.MkdirAll(filepath.Dir(svg), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(svg, []byte(rep.chart()), 0o644); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func selectScenarios(all []scenario, names []string) ([]scenario, error) {
	var out []scenario
	for _, sc := range all {
		if !slices.Contains(names, sc.id) {
			continue
		}
		if sc.warmOf != "" && !slices.Contains(names, sc.warmOf) {
			return nil, fmt.Errorf("--scenarios: %s needs %s (its cache repository)", sc.id, sc.warmOf)
		}
		out = append(out, sc)
	}
	for _, n := range names {
		if !slices.Contains(allScenarios, n) {
			return nil, fmt.Errorf("--scenarios: unknown scenario %q (known: %s)", n, strings.Join(allScenarios, ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--scenarios: none selected")
	}
	return out, nil
}

// setupTools finds (or builds) every selected tool, failing with what is
// missing and how to get it.
func setupTools(ctx context.Context, c config, work string) ([]tool, error) {
	var tools []tool
	hoistBin := "" // built once for both hoist variants
	for _, name := range c.tools {
		switch name {
		case "hoist", "hoist-disk":
			if hoistBin != "" {
				tools = append(tools, hoistTool(hoistBin, name == "hoist-disk"))
				continue
			}
			bin := c.hoist
			if bin == "" {
				bin = filepath.Join(work, "build-push")
				cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./actions/build-push")
				cmd.Dir = c.root
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
				if o, err := cmd.CombinedOutput(); err != nil {
					return nil, fmt.Errorf("go build ./actions/build-push: %v\n%s", err, o)
				}
			}
			hoistBin = bin
			tools = append(tools, hoistTool(bin, name == "hoist-disk"))
		case "kaniko", "kaniko-default":
			if os.Getenv("DOCKER_HOST") == "" {
				return nil, errors.New("DOCKER_HOST is not set: kaniko runs in the rig's Docker engine (test/rig/up.sh, then . .cache/rig/env)")
			}
			if o, err := exec.CommandContext(ctx, "docker", "image", "inspect", c.kanikoImage).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("kaniko image %s is not in the engine (%s): load an image of kaniko's v1.24.0 executor under that name, or name yours with --kaniko-image", c.kanikoImage, strings.TrimSpace(string(o)))
			}
			tools = append(tools, kanikoTool(c.kanikoImage, name == "kaniko-default"))
		case "buildah":
			bin, err := exec.LookPath(c.buildah)
			if err != nil {
				return nil, fmt.Errorf("buildah is not installed (apt-get install -y buildah; test/rig/install.sh installs it): %w", err)
			}
			if os.Geteuid() != 0 {
				return nil, errors.New("buildah runs as root here (--isolation chroot, vfs): run the bench as root")
			}
			tools = append(tools, buildahTool(bin))
		}
	}
	return tools, nil
}

// pushBases pushes the base images the scenarios need, straight to the
// registry, and returns them by repository.
func pushBases(ctx context.Context, root, host string, scs []scenario, log io.Writer) (map[string]v1.Image, error) {
	bases := map[string]v1.Image{}
	for _, sc := range scs {
		if bases[sc.base] != nil {
			continue
		}
		var img v1.Image
		var err error
		switch sc.base {
		case busyboxBase:
			img, err = testrig.BusyboxImage()
		case debianBase:
			img, err = testrig.DebianImage(ctx, filepath.Join(root, ".cache", "rig"), log)
		}
		if err != nil {
			return nil, fmt.Errorf("making the base %s: %w", sc.base, err)
		}
		ref, err := name.ParseReference(host+"/"+sc.base, name.Insecure)
		if err != nil {
			return nil, err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return nil, fmt.Errorf("pushing the base %s: %w", ref, err)
		}
		bases[sc.base] = img
	}
	return bases, nil
}

// measureJob runs one build in a fresh scratch directory, then checks
// the image it pushed.
func measureJob(ctx context.Context, c config, work string, t tool, j job, p *proxy, regHost string, base v1.Image) (sample, error) {
	scratch, err := os.MkdirTemp(work, t.name+"-")
	if err != nil {
		return sample{}, err
	}
	defer removeTree(scratch)
	j.scratch = scratch
	logPath := filepath.Join(c.logs, fmt.Sprintf("%s-%s-r%d.log", j.sc.id, t.name, j.round+1))
	lf, err := os.Create(logPath)
	if err != nil {
		return sample{}, fmt.Errorf("creating the build log: %w", err)
	}
	defer lf.Close()
	j.log = lf

	p.reset()
	shm := watchShm(ctx)
	b, err := t.build(ctx, j)
	b.shm = shm()
	if err != nil {
		return sample{}, fmt.Errorf("%w\n(log: %s)", err, logPath)
	}
	// Check the image straight from the registry (not counted).
	direct := strings.Replace(j.ref, j.host, regHost, 1)
	layers, err := verify(ctx, direct, base, j.sc.want)
	if err != nil {
		return sample{}, fmt.Errorf("checking the image: %w (log: %s)", err, logPath)
	}
	fmt.Fprintf(lf, "bench: %s in %s, image checked\n", t.name, b.d)
	return sample{d: b.d, inner: b.inner, rss: b.rss, shm: b.shm, traffic: p.traffic(layers)}, nil
}

func rotate(ts []tool, n int) []tool {
	out := make([]tool, 0, len(ts))
	for i := range ts {
		out = append(out, ts[(i+n)%len(ts)])
	}
	return out
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
