// Command bump benchmarks hoist bump against a loop of `kustomize edit set
// image` (kustomize v5.7.1) and against yq, on one generated GitOps tree of
// 1,000 kustomizations and 1,000 commented Deployments, in the same run.
// Every tool's output is checked; a wrong result fails the run.
//
//	go run ./bench/bump [--write] [--rounds N]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/redact"
)

const (
	image  = "registry.example.com/team/app"
	oldTag = "1.0.0"
	newTag = "1.4.2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/bump:", err)
		os.Exit(1)
	}
}

type config struct {
	bump, kustomize, yq, git string
	rounds, n                int
	write                    bool
	results                  string
}

func run(ctx context.Context, args []string) error {
	var c config
	fl := flag.NewFlagSet("bench/bump", flag.ContinueOnError)
	fl.StringVar(&c.bump, "bump", "bin/bump", "hoist bump binary (built from ./actions/bump when missing)")
	fl.StringVar(&c.kustomize, "kustomize", "", "kustomize v5.7.1 binary (default: PATH or .cache/tools/bin)")
	fl.StringVar(&c.yq, "yq", "", "yq binary (default: PATH)")
	fl.IntVar(&c.rounds, "rounds", 3, "measured rounds")
	fl.IntVar(&c.n, "n", 1000, "kustomizations and Deployments each")
	fl.BoolVar(&c.write, "write", false, "write the bump section of bench/RESULTS.md")
	fl.StringVar(&c.results, "results", "bench/RESULTS.md", "results file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var err error
	if c.bump, err = ensureBump(ctx, c.bump); err != nil {
		return err
	}
	if c.kustomize, err = find(c.kustomize, "kustomize", "go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1 (GOBIN=$PWD/.cache/tools/bin)"); err != nil {
		return err
	}
	if c.yq, err = find(c.yq, "yq", "apt-get install -y yq"); err != nil {
		return err
	}
	if c.git, err = find("", "git", "apt-get install -y git"); err != nil {
		return err
	}
	kver := output(ctx, c.kustomize, "version")
	yver := output(ctx, c.yq, "--version")

	work, err := os.MkdirTemp("", "bench-bump-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	if err := generate(tree, c.n); err != nil {
		return err
	}

	type sample struct{ dryRun, commit, kustomize, yq time.Duration }
	var samples []sample
	var notes []string
	for r := 0; r < c.rounds+1; r++ { // round 0 warms caches
		var s sample
		// hoist: dry run on a checkout (plan, verify, diff; nothing written).
		dir, err := fresh(ctx, tree, work, "dry")
		if err != nil {
			return err
		}
		d, out, err := timed(ctx, dir, c.bump, "--mode", "dry-run", "--images", image+"="+newTag)
		if err != nil {
			return fmt.Errorf("bump dry-run: %v\n%s", err, tail(out))
		}
		if got := strings.Count(out, "\n+  ") + strings.Count(out, "\n+    ") + strings.Count(out, "\n+        "); got == 0 {
			return fmt.Errorf("bump dry-run printed no edits")
		}
		s.dryRun = d

		// hoist: the whole landing — shallow clone of a bare repository
		// holding the tree, edit, verify, commit, push.
		bare, err := bareRepo(ctx, c.git, tree, work)
		if err != nil {
			return err
		}
		d, out, err = timed(ctx, work, c.bump, "--repository", bare, "--branch", "main", "--images", image+"="+newTag)
		if err != nil {
			return fmt.Errorf("bump commit: %v\n%s", err, tail(out))
		}
		s.commit = d
		if err := checkBare(ctx, c.git, bare, tree, work, c.n); err != nil {
			return fmt.Errorf("hoist bump: %w", err)
		}

		// kustomize: one `kustomize edit set image` per kustomization.
		dir, err = fresh(ctx, tree, work, "kustomize")
		if err != nil {
			return err
		}
		start := time.Now()
		for i := 0; i < c.n; i++ {
			cmd := exec.CommandContext(ctx, c.kustomize, "edit", "set", "image", image+"="+image+":"+newTag)
			cmd.Dir = filepath.Join(dir, "apps", fmt.Sprintf("app-%04d", i))
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("kustomize edit set image in %s: %v\n%s", cmd.Dir, err, out)
			}
		}
		s.kustomize = time.Since(start)
		lost, err := checkKustomize(dir, c.n)
		if err != nil {
			return fmt.Errorf("kustomize: %w", err)
		}
		if r == 0 {
			notes = append(notes, fmt.Sprintf("kustomize: newTag set in all %d kustomizations; %d of them lost comments or key order (kustomize#4481); the %d Deployments are not kustomize's to edit.", c.n, lost, c.n))
		}

		// yq: one in-place process over every file.
		dir, err = fresh(ctx, tree, work, "yq")
		if err != nil {
			return err
		}
		files, err := yamlFiles(dir)
		if err != nil {
			return err
		}
		expr := fmt.Sprintf(`(if .kind == "Deployment" then (.spec.template.spec.containers[] |= (if (.image | startswith(%q)) then .image = %q else . end)) else . end) | (if .images then (.images[] |= (if .name == %q then .newTag = %q else . end)) else . end)`, image+":", image+":"+newTag, image, newTag)
		d, out, err = timed(ctx, dir, c.yq, append([]string{"-y", "-i", expr}, files...)...)
		if err != nil {
			return fmt.Errorf("yq: %v\n%s", err, tail(out))
		}
		s.yq = d
		lost, err = checkYQ(dir, c.n)
		if err != nil {
			return fmt.Errorf("yq: %w", err)
		}
		if r == 0 {
			notes = append(notes, fmt.Sprintf("yq (%s): every value set; %d of %d files lost their comments or blank lines (yq rewrites the whole document).", redact.FirstLine(yver), lost, 2*c.n))
		}
		if r > 0 {
			samples = append(samples, s)
		}
		fmt.Fprintf(os.Stderr, "round %d: bump dry-run %s, bump commit %s, kustomize loop %s, yq %s\n", r, ms(s.dryRun), ms(s.commit), ms(s.kustomize), ms(s.yq))
	}
	med := func(f func(sample) time.Duration) time.Duration {
		var v []time.Duration
		for _, s := range samples {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	dry, commit, kus, yq := med(func(s sample) time.Duration { return s.dryRun }), med(func(s sample) time.Duration { return s.commit }),
		med(func(s sample) time.Duration { return s.kustomize }), med(func(s sample) time.Duration { return s.yq })
	report := renderReport(c, kver, yver, dry, commit, kus, yq, notes)
	fmt.Print(report)
	if c.write {
		return writeSection(c.results, report)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func renderReport(c config, kver, yver string, dry, commit, kus, yq time.Duration, notes []string) string {
	var b strings.Builder
	b.WriteString("## bump\n\n<!-- Written by `go run ./bench/bump --write`; change the program, not this section. -->\n\n")
	fmt.Fprintf(&b, "One image (`%s`, %s → %s) bumped across a generated tree of %d kustomizations (`apps/app-NNNN/kustomization.yaml`, commented) and %d commented Deployments (`deploy/deploy-NNNN.yaml`, two containers, one of them another image). Each tool starts from a fresh copy; every result is checked (a wrong edit fails the run). Median of %d rounds after a warm-up round.\n\n", image, oldTag, newTag, c.n, c.n, c.rounds)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| date | %s |\n| machine | %d CPUs, %s/%s |\n| kustomize | %s |\n| yq | %s (/usr/bin/yq: kislyuk's jq wrapper, not mikefarah's) |\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, redact.FirstLine(kver), redact.FirstLine(yver))
	b.WriteString("| tool | what it does | processes | median | ÷ hoist edit | ÷ hoist edit + landing |\n|---|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| hoist `bump --mode dry-run` | edits all %d files in the checkout: plan, verify by re-parsing, print the diff | 1 | %s | 1 | |\n", 2*c.n, ms(dry))
	fmt.Fprintf(&b, "| hoist `bump` (commit) | shallow clone of a local bare repository, edit all %d files, verify, commit, push | 1 | %s | | 1 |\n", 2*c.n, ms(commit))
	fmt.Fprintf(&b, "| `kustomize edit set image` loop | edits the %d kustomizations only, no git | %d | %s | **%.1f×** | **%.1f×** |\n", c.n, c.n, ms(kus), float64(kus)/float64(dry), float64(kus)/float64(commit))
	fmt.Fprintf(&b, "| yq `-y -i` | edits all %d files, no git | 1 | %s | **%.0f×** | **%.0f×** |\n\n", 2*c.n, ms(yq), float64(yq)/float64(dry), float64(yq)/float64(commit))
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(&b, "Target from issue #5: < 1 s — **%s** (%s with the landing); ≥ 20 × faster than the kustomize loop — edit: **%s** (%.1f×), edit + clone + commit + push: **%s** (%.1f×).\n\n",
		verdict(commit < time.Second), ms(commit), verdict(float64(kus)/float64(dry) >= 20), float64(kus)/float64(dry), verdict(float64(kus)/float64(commit) >= 20), float64(kus)/float64(commit))
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
	b.WriteString("- hoist: only the edited scalars change; comments, blank lines, quoting and key order are checked byte for byte against the expected tree.\n")
	return b.String()
}

func writeSection(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	start := strings.Index(s, "\n## bump\n")
	if start < 0 {
		s = strings.TrimRight(s, "\n") + "\n\n" + section
	} else {
		end := strings.Index(s[start+1:], "\n## ")
		rest := ""
		if end >= 0 {
			rest = s[start+1+end:]
		}
		s = s[:start+1] + section + rest
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

func output(ctx context.Context, bin string, args ...string) string {
	out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out)
}

func timed(ctx context.Context, dir, bin string, args ...string) (time.Duration, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), out.String(), err
}

func ensureBump(ctx context.Context, p string) (string, error) {
	if _, err := os.Stat(p); err == nil {
		return filepath.Abs(p)
	}
	out := filepath.Join(os.TempDir(), "hoist-bench-bump")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", out, "./actions/bump").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building bump (run from the repository root): %v\n%s", err, b)
	}
	return out, nil
}

func find(given, name, install string) (string, error) {
	if given != "" {
		return given, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join(".cache", "tools", "bin", name)
	if _, err := os.Stat(p); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("%s not found: %s", name, install)
}

func kustomization(i int) string {
	return fmt.Sprintf(`# app %04d: overlay owned by team-%d
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

namespace: app-%04d   # one namespace per app
resources:
  - ../../deploy/deploy-%04d.yaml

images:
  # the application image, bumped by CI
  - name: %s
    newTag: "%s" # pinned
  - name: redis
    newTag: "7.2"
`, i, i%7, i, i, image, oldTag)
}

func deployment(i int) string {
	return fmt.Sprintf(`# Deployment %04d
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%04d
  labels:
    app: app-%04d # selector label

spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: %s:%s # the app

          ports:
            - containerPort: 8080
        - name: sidecar
          image: registry.example.com/team/sidecar:%s # not bumped
`, i, i, i, image, oldTag, oldTag)
}

func generate(root string, n int) error {
	for i := 0; i < n; i++ {
		k := filepath.Join(root, "apps", fmt.Sprintf("app-%04d", i), "kustomization.yaml")
		d := filepath.Join(root, "deploy", fmt.Sprintf("deploy-%04d.yaml", i))
		for p, c := range map[string]string{k: kustomization(i), d: deployment(i)} {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func fresh(ctx context.Context, tree, work, name string) (string, error) {
	dst := filepath.Join(work, name)
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", tree, dst).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copying the tree: %v\n%s", err, out)
	}
	return dst, nil
}

func bareRepo(ctx context.Context, git, tree, work string) (string, error) {
	bare := filepath.Join(work, "gitops.git")
	src, err := fresh(ctx, tree, work, "seed")
	if err != nil {
		return "", err
	}
	_ = os.RemoveAll(bare)
	env := append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@e", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@e")
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", bare},
		{"-C", src, "init", "--quiet", "--initial-branch=main"},
		{"-C", src, "add", "-A"},
		{"-C", src, "commit", "--quiet", "-m", "seed"},
		{"-C", src, "push", "--quiet", bare, "main"},
	} {
		cmd := exec.CommandContext(ctx, git, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bare, nil
}

// checkBare clones the bumped repository and compares every file with the
// expected bytes: the original with only the tag replaced.
func checkBare(ctx context.Context, git, bare, tree, work string, n int) error {
	dst := filepath.Join(work, "check")
	_ = os.RemoveAll(dst)
	if out, err := exec.CommandContext(ctx, git, "clone", "--quiet", bare, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("git clone: %v\n%s", err, out)
	}
	for i := 0; i < n; i++ {
		for rel, want := range map[string]string{
			filepath.Join("apps", fmt.Sprintf("app-%04d", i), "kustomization.yaml"): strings.Replace(kustomization(i), `newTag: "`+oldTag+`"`, `newTag: "`+newTag+`"`, 1),
			filepath.Join("deploy", fmt.Sprintf("deploy-%04d.yaml", i)):             strings.Replace(deployment(i), image+":"+oldTag, image+":"+newTag, 1),
		} {
			got, err := os.ReadFile(filepath.Join(dst, rel))
			if err != nil {
				return err
			}
			if string(got) != want {
				return fmt.Errorf("%s is not the original with only the tag changed:\n%s", rel, got)
			}
		}
	}
	return nil
}

func checkKustomize(dir string, n int) (lost int, err error) {
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, "apps", fmt.Sprintf("app-%04d", i), "kustomization.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		s := string(b)
		if !strings.Contains(s, "newTag: "+newTag) && !strings.Contains(s, `newTag: "`+newTag+`"`) {
			return 0, fmt.Errorf("%s: newTag not set:\n%s", p, s)
		}
		if !strings.Contains(s, "# pinned") || !strings.Contains(s, "# one namespace per app") || strings.Index(s, "namespace:") > strings.Index(s, "images:") {
			lost++
		}
	}
	return lost, nil
}

func checkYQ(dir string, n int) (lost int, err error) {
	files, err := yamlFiles(dir)
	if err != nil {
		return 0, err
	}
	if len(files) != 2*n {
		return 0, fmt.Errorf("%d files, want %d", len(files), 2*n)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return 0, err
		}
		s := string(b)
		if !strings.Contains(s, newTag) {
			return 0, fmt.Errorf("%s: %s not set:\n%s", f, newTag, s)
		}
		if !strings.Contains(s, "#") || !strings.Contains(s, "\n\n") {
			lost++
		}
	}
	return lost, nil
}

func yamlFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	if err == nil && len(files) == 0 {
		err = errors.New("no YAML files")
	}
	return files, err
}
