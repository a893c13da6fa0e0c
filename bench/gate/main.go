// Command gate benchmarks hoist's gate on large reports: a generated
// 100,000-case JUnit file (about 30 MB) and a 50 MB Go coverage profile,
// each read by the real binary in its own process, with wall time and peak
// RSS (getrusage of the child). There is no peer: the reporters gate
// replaces do not read coverage (go tool cover -func needs the sources).
// Results are checked: a run that reads the wrong totals fails.
// With --write it replaces the "## gate" section of bench/RESULTS.md.
//
//	go run ./bench/gate [--rounds 5] [--write]
package main

import (
	"bytes"
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
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/gate:", err)
		os.Exit(1)
	}
}

type config struct {
	root      string
	rounds    int
	cases     int
	coverSize int64
	gateBin   string
	write     bool
	keep      string
}

// measurement is one child process: wall time and peak resident memory.
type measurement struct {
	wall   time.Duration
	maxRSS int64 // bytes
	stdout string
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("bench/gate", flag.ContinueOnError)
	fs.StringVar(&c.root, "root", ".", "repository root")
	fs.IntVar(&c.rounds, "rounds", 5, "measured rounds per scenario")
	fs.IntVar(&c.cases, "cases", 100000, "test cases in the JUnit file")
	fs.Int64Var(&c.coverSize, "cover-bytes", 50<<20, "size of the coverage profile")
	fs.StringVar(&c.gateBin, "gate", "", "gate binary (default: built from actions/gate into a temporary directory)")
	fs.BoolVar(&c.write, "write", false, "replace the ## gate section of bench/RESULTS.md")
	fs.StringVar(&c.keep, "keep", "", "generate the inputs into this directory and keep them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	tmp := c.keep
	if tmp == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "bench-gate-"); err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
	} else if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if c.gateBin == "" {
		c.gateBin = filepath.Join(tmp, "gate")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", c.gateBin, "./actions/gate")
		build.Dir, build.Env = c.root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building gate: %v\n%s", err, out)
		}
	}
	binInfo, err := os.Stat(c.gateBin)
	if err != nil {
		return fmt.Errorf("the gate binary: %w", err)
	}

	junit := filepath.Join(tmp, "reports", "big.xml")
	if err := os.MkdirAll(filepath.Dir(junit), 0o755); err != nil {
		return err
	}
	failures, err := writeJUnit(junit, c.cases)
	if err != nil {
		return fmt.Errorf("generating the JUnit file: %w", err)
	}
	profile := filepath.Join(tmp, "cover.out")
	stmts, covered, err := writeCoverProfile(profile, c.coverSize)
	if err != nil {
		return fmt.Errorf("generating the coverage profile: %w", err)
	}
	wantPct := fmt.Sprintf("%.2f", float64(int64(10000*float64(covered)/float64(stmts)+0.5))/100)
	junitSize, _ := fileSize(junit)
	profSize, _ := fileSize(profile)

	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp}
	junitRun := func() (measurement, error) {
		m, err := measure(ctx, tmp, env, c.gateBin, "--junit", "reports/*.xml", "--max-failures", "-1")
		if err != nil {
			return m, err
		}
		if want := fmt.Sprintf("tests=%d\n", c.cases); !strings.Contains(m.stdout, want) {
			return m, fmt.Errorf("gate read the wrong number of tests: want %q in\n%s", want, m.stdout)
		}
		if want := fmt.Sprintf("failures=%d\n", failures); !strings.Contains(m.stdout, want) {
			return m, fmt.Errorf("gate read the wrong number of failures: want %q in\n%s", want, m.stdout)
		}
		return m, nil
	}
	coverRun := func() (measurement, error) {
		m, err := measure(ctx, tmp, env, c.gateBin, "--coverage", "cover.out")
		if err != nil {
			return m, err
		}
		if want := "coverage=" + wantPct + "\n"; !strings.Contains(m.stdout, want) {
			return m, fmt.Errorf("gate read the wrong coverage: want %q in\n%s", want, m.stdout)
		}
		return m, nil
	}
	jm, err := repeat(ctx, c.rounds, junitRun)
	if err != nil {
		return fmt.Errorf("gate --junit: %w", err)
	}
	cm, err := repeat(ctx, c.rounds, coverRun)
	if err != nil {
		return fmt.Errorf("gate --coverage: %w", err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "## gate\n\n<!-- Written by `go run ./bench/gate --write` (make bench); change the program, not this section. -->\n\n")
	fmt.Fprintf(&b, "The real `gate` binary (%.1f MB, CGO off) reads generated reports in its own process; wall time is process start to exit, peak RSS is the child's `ru_maxrss` (getrusage). Each run's totals are checked. Targets from issue #6: the 100,000-case JUnit file in < 1 s (median wall) with < 100 MB peak RSS (the highest of the rounds). Load average when the run started: %s.\n\n", float64(binInfo.Size())/1e6, loadAverage())
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| machine | %d CPUs, %s/%s |\n| go | %s |\n| rounds | %d measured per scenario |\n| command | `go run ./bench/gate --write` (%s) |\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), c.rounds, time.Since(start).Round(time.Second))
	fmt.Fprintf(&b, "| input | size | command | median wall | max wall | peak RSS | target |\n|---|---:|---|---:|---:|---:|---|\n")
	fmt.Fprintf(&b, "| JUnit, %d cases (%d failed, suites of 100) | %.1f MB | `gate --junit 'reports/*.xml' --max-failures -1` | %s | %s | %.1f MB | < 1 s, < 100 MB: **%s** |\n",
		c.cases, failures, float64(junitSize)/1e6, median(jm).wall.Round(time.Millisecond), maxWall(jm).Round(time.Millisecond), float64(maxRSS(jm))/1e6,
		verdict(median(jm).wall < time.Second && maxRSS(jm) < 100e6))
	fmt.Fprintf(&b, "| Go coverprofile, %d statements | %.1f MB | `gate --coverage cover.out` | %s | %s | %.1f MB | (none) |\n",
		stmts, float64(profSize)/1e6, median(cm).wall.Round(time.Millisecond), maxWall(cm).Round(time.Millisecond), float64(maxRSS(cm))/1e6)
	fmt.Fprintf(&b, "\nCoverage read: %s%% of statements (checked against the generator's count).\n", wantPct)
	fmt.Fprint(stdout, b.String())
	if c.write {
		return writeSection(filepath.Join(c.root, "bench", "RESULTS.md"), "gate", b.String())
	}
	return nil
}

// loadAverage is /proc/loadavg's first three figures: other work on the
// machine slows the runs down.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func fileSize(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// measure runs one process in dir and reads its rusage.
func measure(ctx context.Context, dir string, env []string, bin string, args ...string) (measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	m := measurement{wall: time.Since(start), stdout: out.String()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
	if err != nil {
		return m, fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, lastLines(errb.String(), 10))
	}
	return m, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func repeat(ctx context.Context, n int, f func() (measurement, error)) ([]measurement, error) {
	var ms []measurement
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := f()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func median(ms []measurement) measurement {
	s := append([]measurement(nil), ms...)
	sort.Slice(s, func(i, j int) bool { return s[i].wall < s[j].wall })
	return s[len(s)/2]
}

func maxWall(ms []measurement) time.Duration {
	var d time.Duration
	for _, m := range ms {
		d = max(d, m.wall)
	}
	return d
}

func maxRSS(ms []measurement) int64 {
	var r int64
	for _, m := range ms {
		r = max(r, m.maxRSS)
	}
	return r
}

// writeSection replaces "## name" up to the next "## " heading in path, or
// appends it.
func writeSection(path, name, section string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(data)
	head := "## " + name + "\n"
	i := strings.Index(text, head)
	if i < 0 {
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		return os.WriteFile(path, []byte(text+section), 0o644)
	}
	rest := text[i+len(head):]
	end := len(text)
	if j := strings.Index(rest, "\n## "); j >= 0 {
		end = i + len(head) + j + 1
	}
	return os.WriteFile(path, []byte(text[:i]+section+"\n"+text[end:]), 0o644)
}
