package manifests

import (
	"context"
	"fmt"
	"path"
	"runtime"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/sync/errgroup"
)

// Tree is a repository's files (a git tree): contents by slash path, and
// symlinks with their targets. Files whose contents are not read yet are
// listed in More and read with Read when an edit needs them: only the files
// the paths select are ever read.
type Tree struct {
	Files map[string][]byte
	Links map[string]string
	More  map[string]bool
	Read  func(path string) ([]byte, error)
}

// isFile reports whether p is a file of the tree.
func (t Tree) isFile(p string) bool {
	_, ok := t.Files[p]
	return ok || t.More[p]
}

// content reads a file of the tree.
func (t Tree) content(p string) ([]byte, error) {
	if b, ok := t.Files[p]; ok {
		return b, nil
	}
	if t.More[p] && t.Read != nil {
		return t.Read(p)
	}
	return nil, fmt.Errorf("%s: no such file in the tree", p)
}

// resolve follows a symlink chain lexically inside the tree; a link that
// leads outside it is refused.
func (t Tree) resolve(p, entry string) (string, bool, error) {
	for hops := 0; hops < 16; hops++ {
		target, ok := t.Links[p]
		if !ok {
			return p, t.isFile(p), nil
		}
		if path.IsAbs(target) {
			return "", false, fmt.Errorf("paths entry %q: %s leads to %s, outside the repository; refusing to follow it", entry, p, target)
		}
		next := path.Join(path.Dir(p), target)
		if next == ".." || strings.HasPrefix(next, "../") {
			return "", false, fmt.Errorf("paths entry %q: %s leads to %s, outside the repository; refusing to follow it", entry, p, target)
		}
		p = next
	}
	return "", false, fmt.Errorf("paths entry %q: %s: too many levels of symlinks", entry, p)
}

// Select resolves paths (files, directories or doublestar globs) like
// Files does on a directory: YAML files under directories, any file named
// explicitly, symlinks leading outside refused.
func (t Tree) Select(paths []string) ([]string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	all := make([]string, 0, len(t.Files)+len(t.More)+len(t.Links))
	for f := range t.Files {
		all = append(all, f)
	}
	for f := range t.More {
		if _, dup := t.Files[f]; !dup {
			all = append(all, f)
		}
	}
	for l := range t.Links {
		all = append(all, l)
	}
	sort.Strings(all)
	seen := map[string]bool{}
	var out []string
	add := func(p, entry string) error {
		real, isFile, err := t.resolve(p, entry)
		if err != nil {
			return err
		}
		if isFile && !seen[real] {
			seen[real] = true
			out = append(out, real)
		}
		return nil
	}
	for _, raw := range paths {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		if path.IsAbs(entry) {
			return nil, fmt.Errorf("paths entry %q: give a path relative to the repository", entry)
		}
		clean := path.Clean(entry)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("paths entry %q is outside the repository; give a path inside it", entry)
		}
		glob := strings.ContainsAny(entry, "*?[{")
		matched := false
		for _, f := range all {
			switch {
			case glob:
				ok, err := doublestar.Match(clean, f)
				if err != nil {
					return nil, fmt.Errorf("paths entry %q: %w", entry, err)
				}
				if !ok {
					continue
				}
			case f == clean:
			case clean == "." || strings.HasPrefix(f, clean+"/"):
				if !isYAML(f) || strings.Contains("/"+f, "/.git/") {
					continue
				}
			default:
				continue
			}
			matched = true
			if err := add(f, entry); err != nil {
				return nil, err
			}
		}
		if !matched && !glob && clean != "." {
			return nil, fmt.Errorf("paths entry %q: no such file or directory in the repository", entry)
		}
	}
	sort.Strings(out)
	return out, nil
}

// PlanTree is Plan on an in-memory tree. Files are edited in parallel.
func PlanTree(ctx context.Context, t Tree, paths []string, opts Options) ([]FileEdit, error) {
	files, err := t.Select(paths)
	if err != nil {
		return nil, err
	}
	results := make([]*FileEdit, len(files))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, f := range files {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			src, err := t.content(f)
			if err != nil {
				return err
			}
			out, changes, err := Edit(f, src, opts)
			if err != nil {
				if _, ok := err.(*ParseError); ok && !explicitlyNamed(f, paths) && !mentionsAny(src, opts) {
					return nil
				}
				return err
			}
			if out != nil {
				results[i] = &FileEdit{Path: f, Old: src, New: out, Changes: changes}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var edits []FileEdit
	for _, r := range results {
		if r != nil {
			edits = append(edits, *r)
		}
	}
	return edits, nil
}
