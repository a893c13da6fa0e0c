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
	"path/filepath"
	"sync"
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
	// Xattrs are extended attributes (name → value).
	Xattrs map[string]string
	// Hardlink, when set, names an earlier entry of the same layer this
	// one is a hard link of (written as a tar link).
	Hardlink string
	// Devmajor and Devminor of a device node (fs.ModeDevice).
	Devmajor, Devminor int64
	// Inode identifies the source file (device and inode), so that hard
	// links among the sources are kept; zero when unknown. Not written.
	Inode [2]uint64
}

// Context is a build context directory with its .dockerignore rules.
type Context struct {
	Root    string
	ignore  *patternmatcher.PatternMatcher
	pattern []string
	// keeps caches which excluded directories hold a re-included file.
	keepMu sync.Mutex
	keeps  map[string]bool
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
