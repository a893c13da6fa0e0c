package gate

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/hoist-ci/hoist/internal/reports"
)

// expand resolves report globs under the workspace, sorted and deduplicated.
// A pattern matching nothing is a reason to fail: the report a later
// threshold needs was not written.
func (r *Result) expand(input string, patterns []string) []string {
	var files []string
	seen := map[string]bool{}
	for _, p := range patterns {
		pat := filepath.ToSlash(p)
		if filepath.IsAbs(p) {
			if rel, err := filepath.Rel(r.opts.Workspace, p); err == nil && !strings.HasPrefix(rel, "..") {
				pat = filepath.ToSlash(rel)
			}
		}
		var matches []string
		var err error
		if filepath.IsAbs(pat) || strings.HasPrefix(pat, "../") {
			matches, err = doublestar.FilepathGlob(p)
		} else {
			matches, err = doublestar.Glob(os.DirFS(r.opts.Workspace), pat, doublestar.WithFilesOnly())
		}
		if err != nil {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %q is not a valid glob (%v)", input, p, err))
			continue
		}
		if len(matches) == 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: no file matches %q in %s", input, p, r.opts.Workspace))
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
	}
	return files
}

func (r *Result) open(name string) (*os.File, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.opts.Workspace, name)
	}
	return os.Open(path)
}

func (r *Result) read(input string, patterns []string, parse func(name string, f *os.File) error) {
	for _, name := range r.expand(input, patterns) {
		r.Inputs = append(r.Inputs, name)
		f, err := r.open(name)
		if err != nil {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %v", input, err))
			continue
		}
		err = parse(name, f)
		f.Close()
		if err != nil {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %v", input, err))
		}
	}
}

func (r *Result) readReports(o Options) {
	r.TestInputs = len(o.JUnit) > 0 || len(o.GoTestJSON) > 0
	r.read("junit", o.JUnit, func(name string, f *os.File) error {
		t, err := reports.ReadJUnit(name, f)
		r.Tests.Add(t)
		if err != nil {
			r.TestsIncomplete = append(r.TestsIncomplete, name)
		}
		return err
	})
	r.read("go-test-json", o.GoTestJSON, func(name string, f *os.File) error {
		t, err := reports.ReadGoTest(name, f)
		r.Tests.Add(t)
		if err != nil {
			r.TestsIncomplete = append(r.TestsIncomplete, name)
		}
		return err
	})
	r.Counts = r.Tests.Counts()
	// Go profiles are merged block by block (a package measured by several
	// profiles counts once); other formats line by line.
	var goProfiles reports.GoProfiles
	sawGo := false
	r.read("coverage", o.Coverage, func(name string, f *os.File) error {
		br := bufio.NewReader(f)
		head, _ := br.Peek(512)
		if reports.DetectCoverage(head) == reports.FormatGo {
			sawGo = true
			return goProfiles.Read(name, br)
		}
		c, err := reports.ReadCoverage(name, br)
		if err == nil {
			r.Coverage.Add(c)
		}
		return err
	})
	if sawGo {
		r.Coverage.Add(goProfiles.Coverage())
	}
	r.CoveragePct, r.HasCoverage = r.Coverage.Percent()
	r.read("lint", o.Lint, func(name string, f *os.File) error {
		fs, err := reports.ReadLint(name, f)
		r.Findings.Add(fs)
		return err
	})
	r.relativize()
	r.Findings.Sort()
	r.Findings.Fingerprints()
}

// relativize makes report paths relative to the workspace where they are
// absolute paths inside it (checkstyle and SARIF often carry absolute ones;
// GitHub annotations and GitLab reports need repository-relative paths).
func (r *Result) relativize() {
	ws := r.opts.Workspace
	rel := func(p string) string {
		if !filepath.IsAbs(p) || ws == "" {
			return p
		}
		if q, err := filepath.Rel(ws, p); err == nil && !strings.HasPrefix(q, "..") {
			return filepath.ToSlash(q)
		}
		return p
	}
	for i := range r.Findings.Items {
		r.Findings.Items[i].File = rel(r.Findings.Items[i].File)
	}
	for i := range r.Tests.Cases {
		r.Tests.Cases[i].File = rel(r.Tests.Cases[i].File)
	}
	module := goModule(ws)
	for i := range r.Coverage.Files {
		p := rel(r.Coverage.Files[i].Path)
		p = underSource(ws, p, r.Coverage.Sources)
		// Go profiles name files by import path: module/dir/file.go.
		if module != "" && strings.HasPrefix(p, module+"/") {
			p = strings.TrimPrefix(p, module+"/")
		}
		r.Coverage.Files[i].Path = p
	}
	sort.Slice(r.Coverage.Files, func(i, j int) bool { return r.Coverage.Files[i].Path < r.Coverage.Files[j].Path })
}

// underSource resolves a Cobertura file name relative to one of the
// report's <source> directories (coverage.py: source /builds/g/app/src,
// filename app/api.py) into a workspace path (src/app/api.py), when the
// name is not a workspace path already and the joined file exists.
func underSource(ws, p string, sources []string) string {
	if ws == "" || len(sources) == 0 || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(filepath.Join(ws, p)); err == nil {
		return p
	}
	for _, src := range sources {
		if !filepath.IsAbs(src) {
			src = filepath.Join(ws, src)
		}
		cand := filepath.Join(src, p)
		q, err := filepath.Rel(ws, cand)
		if err != nil || strings.HasPrefix(q, "..") {
			continue
		}
		if _, err := os.Stat(cand); err == nil {
			return filepath.ToSlash(q)
		}
	}
	return p
}

// goModule is the module path in the workspace's go.mod, or "".
func goModule(ws string) string {
	data, err := os.ReadFile(filepath.Join(ws, "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}
