// Command retag benchmarks hoist's retag against crane on a local registry:
// per round, one `retag` process writing 4 tags against 4 `crane tag`
// processes, same registry, same run. It prints a Markdown report and, with
// --write, replaces the "## retag" section of bench/RESULTS.md.
//
//	go run ./bench/retag [--rounds 15] [--warmup 2] [--write]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/retag:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	root        string
	rounds      int
	warmup      int
	tags        int
	retagBin    string
	craneBin    string
	registryBin string
	scenarios   []string
	write       bool
	results     string
	trace       bool
	timeout     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench/retag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.rounds, "rounds", 15, "measured rounds per scenario")
	fs.IntVar(&c.warmup, "warmup", 2, "warm-up rounds per scenario (run and verified, not measured)")
	fs.IntVar(&c.tags, "tags", 4, "tags written per round by each tool")
	fs.StringVar(&c.retagBin, "retag", "", "hoist's retag binary (default <repo>/bin/retag; build it with `make build`)")
	fs.StringVar(&c.craneBin, "crane", "", "crane binary (default: crane on PATH, <repo>/.cache/tools/bin, $GOBIN, $GOPATH/bin, ~/go/bin)")
	fs.StringVar(&c.registryBin, "registry", "", "Debian's docker-registry binary (default: docker-registry on PATH)")
	scenarios := fs.String("scenarios", "anonymous,token", "registry set-ups to measure, comma-separated: anonymous (no auth), token (Bearer tokens from a token server, as Docker Hub, GHCR, GitLab, Harbor), htpasswd (HTTP Basic)")
	fs.BoolVar(&c.write, "write", false, "replace the `## retag` section of --results with the report")
	fs.StringVar(&c.results, "results", "", "results file (default <repo>/bench/RESULTS.md)")
	fs.BoolVar(&c.trace, "trace", false, "print the request timeline of the last round of each scenario to stderr")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit for the whole run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q: every setting is a flag (see -h)", fs.Args())
	}
	if c.rounds < 1 || c.warmup < 0 || c.tags < 1 {
		return c, fmt.Errorf("--rounds %d, --warmup %d, --tags %d: need rounds ≥ 1, warmup ≥ 0, tags ≥ 1", c.rounds, c.warmup, c.tags)
	}
	for _, s := range strings.Split(*scenarios, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "":
		case scenarioAnonymous, scenarioToken, scenarioHtpasswd:
			c.scenarios = append(c.scenarios, s)
		default:
			return c, fmt.Errorf("--scenarios: unknown scenario %q: use %s, %s and/or %s", s, scenarioAnonymous, scenarioToken, scenarioHtpasswd)
		}
	}
	if len(c.scenarios) == 0 {
		return c, fmt.Errorf("--scenarios %q names no scenario: use %s, %s and/or %s", *scenarios, scenarioAnonymous, scenarioToken, scenarioHtpasswd)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	if cfg.root, err = moduleRoot(); err != nil {
		return err
	}
	if cfg.results == "" {
		cfg.results = filepath.Join(cfg.root, "bench", "RESULTS.md")
	}
	tl, err := findTools(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hoist %s\ncrane %s (%s)\nregistry %s\n", tl.retag, tl.crane, tl.craneVersion, tl.registryVersion)
	if tl.craneVersion != wantCraneVersion {
		fmt.Fprintf(stderr, "warning: crane is %s, the benchmark's peer is %s (go install github.com/google/go-containerregistry/cmd/crane@%s)\n",
			tl.craneVersion, wantCraneVersion, wantCraneVersion)
	}

	started := time.Now()
	var sums []summary
	for _, sc := range cfg.scenarios {
		b := &bench{cfg: cfg, tools: tl, scenario: sc, log: stderr}
		rounds, err := b.run(ctx)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		sums = append(sums, summarize(sc, rounds))
	}
	m := meta{
		date:     started.UTC().Format("2006-01-02 15:04 MST"),
		machine:  machine(),
		hoist:    tl.hoistVersion,
		crane:    tl.craneVersion,
		registry: tl.registryVersion,
		goVer:    runtime.Version(),
		rounds:   cfg.rounds,
		warmup:   cfg.warmup,
		tags:     cfg.tags,
		command:  strings.TrimSpace("go run ./bench/retag " + strings.Join(args, " ")),
		duration: time.Since(started),
	}
	section := render(m, sums)
	fmt.Fprint(stdout, section)
	if cfg.write {
		if err := writeSection(cfg.results, "retag", section); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote the retag section of %s\n", cfg.results)
	}
	return nil
}

// moduleRoot walks up from the working directory to hoist's go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("reading the working directory: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/hoist-ci/hoist\n") {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s is not inside the hoist repository (no go.mod of github.com/hoist-ci/hoist above it): run the benchmark from the repository", wd)
		}
	}
}

// machine describes the host: CPUs, CPU model, OS/arch.
func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	s := fmt.Sprintf("%d CPUs (nproc)", runtime.NumCPU())
	if model != "" {
		s += ", " + model
	}
	return s + ", " + runtime.GOOS + "/" + runtime.GOARCH
}

// output runs a short command and returns its trimmed combined output.
func output(ctx context.Context, dir, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("running %s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
