package bump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/hoist-ci/hoist/internal/manifests"
)

func isGlob(p string) bool { return strings.ContainsAny(p, "*?[{") }

// readImagesFrom reads the images-from files and globs (relative to dir):
// every non-empty line of every file is an images entry. It returns the
// entries and the items that matched no file.
func readImagesFrom(dir string, items []string) (entries, unmatched []string, err error) {
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pattern := item
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		var files []string
		if isGlob(item) {
			if files, err = doublestar.FilepathGlob(pattern, doublestar.WithFilesOnly()); err != nil {
				return nil, nil, fmt.Errorf("images-from %q: %w", item, err)
			}
			sort.Strings(files)
		} else if fi, serr := os.Stat(pattern); serr == nil && !fi.IsDir() {
			files = []string{pattern}
		} else if serr != nil && !errors.Is(serr, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("images-from %q: %w", item, serr)
		} else if serr == nil {
			return nil, nil, fmt.Errorf("images-from %q is a directory: give files or a glob (%s/*.ref)", item, strings.TrimSuffix(item, "/"))
		}
		if len(files) == 0 {
			unmatched = append(unmatched, item)
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, fmt.Errorf("images-from %q: %w", item, err)
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if line := strings.TrimSpace(sc.Text()); line != "" {
					entries = append(entries, line)
				}
			}
			if err := sc.Err(); err != nil {
				return nil, nil, fmt.Errorf("images-from %q: reading %s: %w", item, f, err)
			}
		}
	}
	return entries, unmatched, nil
}

// references records which images entries a plan found in the files.
type references struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *references) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[name] = true
}

func (r *references) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[name]
}

// noMatch is what a plan matched nothing for: paths globs that select no
// file, and images no selected file references.
type noMatch struct {
	paths  []string
	images []manifests.Update
	from   []string // images-from items that matched no file
}

// check fails on what matched nothing, naming the input, the value and the
// fix — or, with allow, logs it as warnings.
func (n noMatch) check(allow bool, paths []string, log *slog.Logger) error {
	var problems []string
	for _, p := range n.from {
		problems = append(problems, fmt.Sprintf("images-from %q matches no file: check the path (relative to the workspace) and that the job that writes it ran and passed it on as an artifact", p))
	}
	for _, p := range n.paths {
		problems = append(problems, fmt.Sprintf("paths entry %q matches no file in the repository: check the glob (relative to the repository root, ** for any depth)", p))
	}
	where := "the repository"
	if len(paths) > 0 {
		where = "paths " + strings.Join(paths, ", ")
	}
	for _, u := range n.images {
		problems = append(problems, fmt.Sprintf("images entry %q: no file under %s references %s, so nothing would deploy it: check the image name (with or without the registry host, as the manifests write it) and paths", u.Entry, where, u.Name))
	}
	if len(problems) == 0 {
		return nil
	}
	if allow {
		for _, p := range problems {
			log.Warn(p + " (allow-no-match: passing)")
		}
		return nil
	}
	if len(problems) == 1 {
		return errors.New(problems[0] + "; or set allow-no-match: true to let bump pass")
	}
	return fmt.Errorf("nothing matched for %d inputs, so bump stops (set allow-no-match: true to let it pass):\n- %s", len(problems), strings.Join(problems, "\n- "))
}

// unmatchedGlobs are the glob entries of paths that select no file, by
// select (one entry at a time). Other entries that name nothing are already
// errors of select.
func unmatchedGlobs(paths []string, sel func([]string) ([]string, error)) ([]string, error) {
	var out []string
	for _, p := range paths {
		if !isGlob(p) {
			continue
		}
		files, err := sel([]string{p})
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out, nil
}

// unreferenced are the updates no planned file referenced.
func unreferenced(ups []manifests.Update, refs *references) []manifests.Update {
	var out []manifests.Update
	for _, u := range ups {
		if !refs.has(u.Name) {
			out = append(out, u)
		}
	}
	return out
}
