package layer

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Lstat sees the build context as BuildKit receives it: what
// .dockerignore excludes does not exist, except the directories above a
// file an exception (!pattern) brings back. Every entry is owned by root,
// as Docker documents for COPY and ADD without --chown.
func (c *Context) Lstat(name string) (Entry, bool) {
	name = clean(name)
	e, ok := DirView{Root: c.Root}.Lstat(name)
	if !ok || !c.visible(name, e.Mode.IsDir()) {
		return Entry{}, false
	}
	// BuildKit receives the context without extended attributes.
	e.UID, e.GID, e.Xattrs = 0, 0, nil
	return e, true
}

// ReadDir lists the visible entries of a context directory.
func (c *Context) ReadDir(name string) ([]string, error) {
	names, err := DirView{Root: c.Root}.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if _, ok := c.Lstat(joinName(clean(name), n)); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// visible: not excluded by .dockerignore, or a directory holding
// something an exception brings back.
func (c *Context) visible(rel string, dir bool) bool {
	if rel == "" || !c.Ignored(rel) {
		return true
	}
	if !dir || c.ignore == nil || !c.ignore.Exclusions() {
		return false
	}
	c.keepMu.Lock()
	defer c.keepMu.Unlock()
	if c.keeps == nil {
		c.keeps = map[string]bool{}
	}
	if v, ok := c.keeps[rel]; ok {
		return v
	}
	v := c.holdsIncluded(rel)
	c.keeps[rel] = v
	return v
}

// holdsIncluded reports whether an excluded directory has a descendant
// that is not excluded.
func (c *Context) holdsIncluded(rel string) bool {
	des, err := os.ReadDir(filepath.Join(c.Root, filepath.FromSlash(rel)))
	if err != nil {
		return false
	}
	for _, de := range des {
		sub := rel + "/" + de.Name()
		if !c.Ignored(sub) {
			return true
		}
		if de.IsDir() && c.holdsIncluded(sub) {
			return true
		}
	}
	return false
}

// MemSource is a source held in memory: a flat directory of files, such
// as a heredoc (COPY <<EOF) or an ADD download.
type MemSource struct {
	files map[string]Entry
}

// NewMemSource holds files (each named by its entry's Name, a single
// path component) with content data, mode and time.
func NewMemSource() *MemSource { return &MemSource{files: map[string]Entry{}} }

// Add puts a file in the source.
func (m *MemSource) Add(name string, data []byte, mode fs.FileMode, mtime time.Time) {
	b := bytes.Clone(data)
	m.files[clean(name)] = Entry{Name: clean(name), Mode: mode.Perm(), Size: int64(len(b)), ModTime: mtime,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// Lstat returns the root directory or one of the files.
func (m *MemSource) Lstat(name string) (Entry, bool) {
	name = clean(name)
	if name == "" {
		return Entry{Mode: fs.ModeDir | 0o755}, true
	}
	e, ok := m.files[name]
	return e, ok
}

// ReadDir lists the files of the root.
func (m *MemSource) ReadDir(name string) ([]string, error) {
	if clean(name) != "" {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]string, 0, len(m.files))
	for n := range m.files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Why explains why a path the Dockerfile names is not in the context as
// BuildKit receives it: .dockerignore excludes it, or it goes through a
// symbolic link that points outside (links are resolved inside the
// context, so nothing outside is ever read). "" when neither.
func (c *Context) Why(src string) string {
	cur := ""
	for _, part := range splitPath(clean(src)) {
		if part == "" {
			continue
		}
		next := joinName(cur, part)
		if c.Ignored(next) {
			return fmt.Sprintf("/%s is excluded by .dockerignore: remove the pattern or the source", next)
		}
		host := filepath.Join(c.Root, filepath.FromSlash(next))
		fi, err := os.Lstat(host)
		if err != nil {
			return ""
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(host)
			if err != nil {
				return ""
			}
			if t := path.Join(cur, filepath.ToSlash(target)); filepath.IsAbs(target) || t == ".." || strings.HasPrefix(t, "../") {
				return fmt.Sprintf("it goes through the symlink %s -> %s, which points outside the context: links are resolved inside the context (as Docker does), so nothing outside is read", next, target)
			}
		}
		cur = next
	}
	return ""
}
