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

	"github.com/moby/patternmatcher"
)

// Owner is a numeric uid:gid.
type Owner struct{ UID, GID int }

// CopyOptions describe one COPY or ADD from the context.
type CopyOptions struct {
	// Dest is the absolute destination; DestDir is true when it names a
	// directory (a trailing slash, or several sources).
	Dest    string
	DestDir bool
	// Owner of the copied entries; nil is root (0:0), as Docker does.
	Owner *Owner
	// Chmod, when set, gives the permission bits of each copied entry.
	Chmod func(cur fs.FileMode, isDir bool) fs.FileMode
	// Excludes are COPY --exclude patterns.
	Excludes []string
	// Existing looks up a directory the stage already has (by name, no
	// leading slash): a layer repeats the parent directories of what it
	// changes with their current attributes, as BuildKit's diff does.
	// Directories it does not know are created 0755, owned by Owner.
	Existing func(name string) (Entry, bool)
}

// Copy lists the entries COPY <sources> <dest> writes from the context,
// parent directories first, sorted by name.
func (c *Context) Copy(sources []string, o CopyOptions) ([]Entry, error) {
	var excl *patternmatcher.PatternMatcher
	if len(o.Excludes) > 0 {
		var err error
		if excl, err = patternmatcher.New(o.Excludes); err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
	}
	var rels []string
	for _, s := range sources {
		r, err := c.Expand(s)
		if err != nil {
			return nil, err
		}
		rels = append(rels, r...)
	}
	destDir := o.DestDir || len(rels) > 1
	set := newEntrySet()
	for _, rel := range rels {
		host, err := c.resolve(rel, rel)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", rel, err)
		}
		if fi.IsDir() {
			// A directory's contents go into dest (created, not copied).
			target := strings.TrimPrefix(o.Dest, "/")
			set.dirs(target)
			if err := c.walk(host, rel, target, o, excl, set); err != nil {
				return nil, err
			}
			continue
		}
		target := strings.TrimPrefix(o.Dest, "/")
		if destDir {
			target = path.Join(target, path.Base(rel))
		}
		set.add(o.fileEntry(target, fi, "", host))
	}
	set.parents(strings.TrimPrefix(o.Dest, "/"), destDir, o)
	return set.sorted(), nil
}

func (c *Context) walk(hostDir, relDir, target string, o CopyOptions, excl *patternmatcher.PatternMatcher, set *entrySet) error {
	des, err := os.ReadDir(hostDir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", relDir, err)
	}
	for _, de := range des {
		rel := path.Join(relDir, de.Name())
		if c.Ignored(rel) && !c.mayReinclude(rel, de.IsDir()) {
			continue
		}
		sub := path.Join(relDir, de.Name())
		if excl != nil {
			r := strings.TrimPrefix(strings.TrimPrefix(sub, relDir), "/")
			if ok, _ := excl.MatchesOrParentMatches(r); ok {
				continue
			}
		}
		host := filepath.Join(hostDir, de.Name())
		fi, err := os.Lstat(host)
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		name := path.Join(target, de.Name())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if c.Ignored(rel) {
				continue
			}
			link, err := os.Readlink(host)
			if err != nil {
				return fmt.Errorf("reading link %s: %w", rel, err)
			}
			set.add(o.fileEntry(name, fi, filepath.ToSlash(link), host))
		case fi.IsDir():
			if !c.Ignored(rel) {
				set.add(o.fileEntry(name, fi, "", host))
			}
			if err := c.walk(host, rel, name, o, excl, set); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if c.Ignored(rel) {
				continue
			}
			set.add(o.fileEntry(name, fi, "", host))
		default:
			// Sockets, devices and pipes in a context are skipped, as Docker's context upload does.
		}
	}
	return nil
}

// mayReinclude: an ignored directory is still walked when exclusion
// exceptions (!pattern) exist, since one may re-include something below.
func (c *Context) mayReinclude(rel string, dir bool) bool {
	if !dir || c.ignore == nil {
		return false
	}
	return c.ignore.Exclusions()
}

func (o CopyOptions) fileEntry(name string, fi fs.FileInfo, link, host string) Entry {
	e := Entry{Name: name, ModTime: fi.ModTime()}
	perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	switch {
	case link != "":
		e.Mode = fs.ModeSymlink | 0o777
		e.Linkname = link
	case fi.IsDir():
		if o.Chmod != nil {
			perm = o.Chmod(perm, true)
		}
		e.Mode = fs.ModeDir | perm
	default:
		if o.Chmod != nil {
			perm = o.Chmod(perm, false)
		}
		e.Mode = perm
		e.Size = fi.Size()
		e.Open = func() (io.ReadCloser, error) { return os.Open(host) }
	}
	if o.Owner != nil {
		e.UID, e.GID = o.Owner.UID, o.Owner.GID
	}
	return e
}

// Inline is a heredoc source: COPY <<EOF dest.
func Inline(dest string, destDir bool, name, data string, o CopyOptions) []Entry {
	target := strings.TrimPrefix(dest, "/")
	if destDir {
		target = path.Join(target, name)
	}
	perm := fs.FileMode(0o644)
	if o.Chmod != nil {
		perm = o.Chmod(perm, false)
	}
	b := []byte(data)
	e := Entry{Name: target, Mode: perm, Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
	if o.Owner != nil {
		e.UID, e.GID = o.Owner.UID, o.Owner.GID
	}
	set := newEntrySet()
	set.add(e)
	set.parents(target, false, o)
	return set.sorted()
}

// Merge combines entry lists; a later entry with the same name wins.
func Merge(lists ...[]Entry) []Entry {
	set := newEntrySet()
	for _, l := range lists {
		for _, e := range l {
			set.add(e)
		}
	}
	return set.sorted()
}

type entrySet struct {
	m     map[string]Entry
	extra map[string]bool // directories to create even when empty
}

func newEntrySet() *entrySet { return &entrySet{m: map[string]Entry{}, extra: map[string]bool{}} }

// dirs asks for a directory to exist (created by parents when missing).
func (s *entrySet) dirs(name string) {
	if name = strings.Trim(path.Clean("/"+name), "/"); name != "" {
		s.extra[name] = true
	}
}

func (s *entrySet) add(e Entry) {
	e.Name = strings.Trim(path.Clean("/"+e.Name), "/")
	if e.Name == "" {
		return // the root directory itself is never an entry
	}
	s.m[e.Name] = e
}

// parents adds the directories above every entry (and dest itself when
// it is a directory) that no entry defines: with their current attributes
// when the stage has them, else created 0755 and owned by o.Owner.
func (s *entrySet) parents(dest string, destDir bool, o CopyOptions) {
	dest = strings.Trim(path.Clean("/"+dest), "/")
	dirs := map[string]bool{}
	for name := range s.m {
		for d := path.Dir(name); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range s.extra {
		for ; d != "." && d != "/" && d != ""; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	if destDir && dest != "" {
		for d := dest; d != "." && d != "/" && d != ""; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if _, ok := s.m[d]; ok {
			continue
		}
		if o.Existing != nil {
			if e, ok := o.Existing(d); ok && e.Mode.IsDir() {
				e.Name = d
				s.m[d] = e
				continue
			}
		}
		e := Entry{Name: d, Mode: fs.ModeDir | 0o755}
		if o.Owner != nil {
			e.UID, e.GID = o.Owner.UID, o.Owner.GID
		}
		s.m[d] = e
	}
}

func (s *entrySet) sorted() []Entry {
	out := make([]Entry, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Clamp sets every entry's time to at most epoch.
func Clamp(entries []Entry, epoch time.Time) {
	for i := range entries {
		if entries[i].ModTime.IsZero() || entries[i].ModTime.After(epoch) {
			entries[i].ModTime = epoch
		}
	}
}

// WithoutTimes returns a copy of entries with every time zeroed: the
// content a cache key covers (paths, bytes, modes, ownership, links).
func WithoutTimes(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		e.ModTime = time.Time{}
		out[i] = e
	}
	return out
}

// WithParents adds to entries the parent directories a layer repeats or
// creates (see CopyOptions.Existing), and dest when destDir.
func WithParents(entries []Entry, dest string, destDir bool, o CopyOptions) []Entry {
	set := newEntrySet()
	for _, e := range entries {
		set.add(e)
	}
	set.parents(dest, destDir, o)
	return set.sorted()
}
