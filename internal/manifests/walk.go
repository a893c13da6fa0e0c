package manifests

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Files resolves paths (files, directories or doublestar globs, relative to
// root) to the YAML files they name inside root, as slash-separated paths
// relative to root, sorted. No paths means the whole of root. A path, or a
// symlink met on the way, that leads outside root is refused. Directories
// named .git are skipped, as are symlinks to directories.
func Files(root string, paths []string) ([]string, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository directory %q: %w", root, err)
	}
	realRoot, err := filepath.EvalSymlinks(absRoot)
	if err != nil {
		return nil, fmt.Errorf("repository directory %q: %w", root, err)
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	seen := map[string]bool{}
	var out []string
	add := func(rel string) {
		if !seen[rel] {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if filepath.IsAbs(p) {
			rel, err := filepath.Rel(absRoot, p)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				if rel2, err2 := filepath.Rel(realRoot, p); err2 == nil && rel2 != ".." && !strings.HasPrefix(rel2, ".."+string(filepath.Separator)) {
					rel = rel2
				} else {
					return nil, fmt.Errorf("paths entry %q is outside the repository %s; give a path inside it", p, absRoot)
				}
			}
			p = rel
		}
		clean := filepath.Clean(filepath.FromSlash(p))
		if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("paths entry %q is outside the repository %s; give a path inside it", p, absRoot)
		}
		var matches []string
		if strings.ContainsAny(p, "*?[{") {
			ms, err := doublestar.Glob(os.DirFS(realRoot), filepath.ToSlash(clean), doublestar.WithNoFollow())
			if err != nil {
				return nil, fmt.Errorf("paths entry %q: %w", p, err)
			}
			for _, m := range ms {
				matches = append(matches, filepath.FromSlash(m))
			}
		} else {
			matches = []string{clean}
		}
		for _, m := range matches {
			if err := collect(realRoot, m, p, add); err != nil {
				return nil, err
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolve follows symlinks and refuses a target outside root.
func resolve(root, rel, entry string) (string, os.FileInfo, error) {
	full := filepath.Join(root, rel)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", nil, fmt.Errorf("paths entry %q: %w", entry, err)
	}
	if !inside(root, real) {
		return "", nil, fmt.Errorf("paths entry %q: %s leads to %s, outside the repository; refusing to follow it", entry, filepath.ToSlash(rel), real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", nil, fmt.Errorf("paths entry %q: %w", entry, err)
	}
	return real, fi, nil
}

func isYAML(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

func collect(root, rel, entry string, add func(string)) error {
	_, fi, err := resolve(root, rel, entry)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		add(filepath.ToSlash(rel))
		return nil
	}
	return filepath.WalkDir(filepath.Join(root, rel), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !isYAML(d.Name()) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			_, fi, err := resolve(root, r, entry)
			if err != nil {
				return err
			}
			if fi.IsDir() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		add(filepath.ToSlash(r))
		return nil
	})
}

// FileEdit is one file's edit.
type FileEdit struct {
	// Path is relative to the root, slash-separated.
	Path    string
	Old     []byte
	New     []byte
	Changes []Change
}

// Plan edits every file the paths name under root, in memory. It fails on
// the first file that cannot be parsed or edited safely; files that need no
// change are not returned.
func Plan(ctx context.Context, root string, paths []string, opts Options) ([]FileEdit, error) {
	files, err := Files(root, paths)
	if err != nil {
		return nil, err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	var edits []FileEdit
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		real, _, err := resolve(realRoot, filepath.FromSlash(f), f)
		if err != nil {
			return nil, err
		}
		src, err := os.ReadFile(real)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		out, changes, err := Edit(f, src, opts)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) && !explicitlyNamed(f, paths) {
				// A YAML-looking file that is not YAML (a Helm template,
				// say) is not ours to judge unless it was named.
				if !mentionsAny(src, opts) {
					continue
				}
			}
			return nil, err
		}
		if out != nil {
			edits = append(edits, FileEdit{Path: f, Old: src, New: out, Changes: changes})
		}
	}
	return edits, nil
}

func explicitlyNamed(f string, paths []string) bool {
	for _, p := range paths {
		if filepath.ToSlash(filepath.Clean(p)) == f {
			return true
		}
	}
	return false
}

// mentionsAny reports whether src names one of the images being updated.
func mentionsAny(src []byte, opts Options) bool {
	s := string(src)
	for _, u := range opts.Updates {
		r, _ := ParseRef(u.Name)
		if strings.Contains(s, r.Path) {
			return true
		}
	}
	return false
}

// Write writes the edited files under root, keeping each file's mode.
func Write(root string, edits []FileEdit) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	for _, e := range edits {
		real, fi, err := resolve(realRoot, filepath.FromSlash(e.Path), e.Path)
		if err != nil {
			return err
		}
		tmp := real + ".hoist-tmp"
		if err := os.WriteFile(tmp, e.New, fi.Mode().Perm()); err != nil {
			return fmt.Errorf("writing %s: %w", e.Path, err)
		}
		if err := os.Rename(tmp, real); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", e.Path, err)
		}
	}
	return nil
}
