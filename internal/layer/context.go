// Package layer builds image layers from a build context: the entries a
// COPY or ADD writes (modes, ownership, parent directories, links), the
// checks that keep them inside the context, and the sorted, optionally
// reproducible tar stream, compressed with parallel gzip or zstd.
package layer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Entry is one file, directory or link of a layer.
type Entry struct {
	// Name is the path in the image, without a leading slash.
	Name string
	// Mode holds the type bits and the permissions (with setuid, setgid, sticky).
	Mode     fs.FileMode
	UID, GID int
	Linkname string
	Size     int64
	ModTime  time.Time
	// Open returns a regular file's content.
	Open func() (io.ReadCloser, error)
}

// Context is a build context directory with its .dockerignore rules.
type Context struct {
	Root    string
	ignore  *patternmatcher.PatternMatcher
	pattern []string
}

// OpenContext opens dir; the ignore file is <dockerfile>.dockerignore next
// to the Dockerfile when present, else <dir>/.dockerignore.
func OpenContext(dir, dockerfile string) (*Context, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", dir, err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, fmt.Errorf("context %s: %w", dir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("context %s is not a directory: set context to the directory holding your sources", dir)
	}
	c := &Context{Root: root}
	candidates := []string{filepath.Join(root, ".dockerignore")}
	if dockerfile != "" {
		candidates = append([]string{dockerfile + ".dockerignore"}, candidates...)
	}
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if c.ignore, err = patternmatcher.New(patterns); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		c.pattern = patterns
		break
	}
	return c, nil
}

// Ignored reports whether a context-relative, slash-separated path is
// excluded by .dockerignore.
func (c *Context) Ignored(rel string) bool {
	if c.ignore == nil || rel == "." || rel == "" {
		return false
	}
	ok, err := c.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// SafetyError is a source that would read outside the context.
type SafetyError struct {
	Source string
	Reason string
}

func (e *SafetyError) Error() string {
	return fmt.Sprintf("source %q %s: COPY and ADD only read inside the build context; move the file into the context or change the context directory", e.Source, e.Reason)
}

// clean validates a source path from a Dockerfile and returns it relative
// to the context root (slash-separated, "." for the root).
func cleanSource(src string) (string, error) {
	if path.IsAbs(src) {
		return "", &SafetyError{Source: src, Reason: "is an absolute path"}
	}
	p := path.Clean(src)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", &SafetyError{Source: src, Reason: "points above the context with ../"}
	}
	return p, nil
}

// resolve follows symlinks in rel (each component) and fails when one
// leads out of the context. It returns the host path.
func (c *Context) resolve(src, rel string) (string, error) {
	cur := ""
	parts := strings.Split(rel, "/")
	hops := 0
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "." || part == "" {
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(c.Root, filepath.FromSlash(next)))
		if err != nil {
			return "", fmt.Errorf("source %q: %w", src, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("source %q: too many levels of symbolic links", src)
		}
		target, err := os.Readlink(filepath.Join(c.Root, filepath.FromSlash(next)))
		if err != nil {
			return "", fmt.Errorf("source %q: %w", src, err)
		}
		target = filepath.ToSlash(target)
		var joined string
		if path.IsAbs(target) {
			return "", &SafetyError{Source: src, Reason: fmt.Sprintf("goes through the symlink %s -> %s, which points outside", next, target)}
		}
		joined = path.Join(cur, target)
		if joined == ".." || strings.HasPrefix(joined, "../") {
			return "", &SafetyError{Source: src, Reason: fmt.Sprintf("goes through the symlink %s -> %s, which points outside", next, target)}
		}
		rest := append(strings.Split(joined, "/"), parts[i+1:]...)
		parts, i, cur = rest, -1, ""
	}
	return filepath.Join(c.Root, filepath.FromSlash(cur)), nil
}

// Expand returns the context-relative paths a source names: itself, or
// the matches of a glob (sorted). Ignored paths never match.
func (c *Context) Expand(src string) ([]string, error) {
	rel, err := cleanSource(src)
	if err != nil {
		return nil, err
	}
	if !strings.ContainsAny(rel, "*?[") {
		if c.Ignored(rel) {
			return nil, fmt.Errorf("source %q is excluded by .dockerignore: remove the pattern or the source", src)
		}
		host, err := c.resolve(src, rel)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("source %q not found in the build context %s", src, c.Root)
			}
			return nil, err
		}
		if _, err := os.Stat(host); err != nil {
			return nil, fmt.Errorf("source %q: %w", src, err)
		}
		return []string{rel}, nil
	}
	matches, err := filepath.Glob(filepath.Join(c.Root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("source %q: bad pattern: %w", src, err)
	}
	var out []string
	for _, m := range matches {
		r, err := filepath.Rel(c.Root, m)
		if err != nil {
			return nil, err
		}
		r = filepath.ToSlash(r)
		if !c.Ignored(r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source %q matches no file in the build context", src)
	}
	sort.Strings(out)
	return out, nil
}
