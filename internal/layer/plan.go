package layer

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
)

// Planner computes the layer of one COPY, ADD or WORKDIR the way BuildKit
// makes it: its file operations (fsutil's copy, moby's untar, MkdirAll)
// applied to the stage, and the layer being the overlay diff — every entry
// the step wrote, and the directories above them with their attributes
// in the stage. It reads the stage through a View and writes nothing.
type Planner struct {
	base    View
	changed map[string]Entry
	// inodes maps a source file (device, inode) to the first entry copied
	// from it in this step: hard links among the sources stay links.
	inodes map[[2]uint64]string
}

// NewPlanner starts a step on the stage v.
func NewPlanner(v View) *Planner {
	return &Planner{base: v, changed: map[string]Entry{}, inodes: map[[2]uint64]string{}}
}

// Lstat sees the stage with the step's changes so far.
func (p *Planner) Lstat(name string) (Entry, bool) {
	name = clean(name)
	if e, ok := p.changed[name]; ok {
		return e, true
	}
	for d := name; d != ""; {
		d = parentOf(d)
		if e, ok := p.changed[d]; ok && !e.Mode.IsDir() {
			return Entry{}, false // replaced by a non-directory
		}
	}
	return p.base.Lstat(name)
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

func (p *Planner) set(e Entry) {
	if e.Name == "" {
		return // the root is never an entry of a layer
	}
	p.changed[e.Name] = e
}

// Changed reports whether the step changed anything.
func (p *Planner) Changed() bool { return len(p.changed) > 0 }

// Entries are the layer's entries, sorted by name: what the step wrote,
// and every directory above it as the stage has it (a directory the step
// created has the attributes it was created with).
func (p *Planner) Entries() []Entry {
	out := map[string]Entry{}
	for name, e := range p.changed {
		out[name] = e
		for d := parentOf(name); d != ""; d = parentOf(d) {
			if _, ok := out[d]; ok {
				continue
			}
			if pe, ok := p.Lstat(d); ok {
				pe.Name = d
				out[d] = pe
			}
		}
	}
	list := make([]Entry, 0, len(out))
	for _, e := range out {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// MkdirAll creates a directory and its missing parents, as BuildKit's
// MkdirAll does: each new one with mode perm and owner (nil: root), an
// existing directory left as it is. dir is resolved already (no link).
func (p *Planner) MkdirAll(dir string, perm fs.FileMode, owner *Owner) error {
	dir = clean(dir)
	if dir == "" {
		return nil
	}
	cur := ""
	for _, c := range strings.Split(dir, "/") {
		cur = strings.TrimPrefix(cur+"/"+c, "/")
		e, ok := p.Lstat(cur)
		if ok {
			if e.Mode.IsDir() {
				continue
			}
			if e.Mode&fs.ModeSymlink != 0 {
				// MkdirAll stats (follows) each level: a link to a
				// directory is a directory.
				t, err := Resolve(p, cur)
				if err == nil {
					if te, ok := p.Lstat(t); ok && te.Mode.IsDir() {
						cur = t
						continue
					}
				}
			}
			return fmt.Errorf("mkdir /%s: /%s is not a directory", dir, cur)
		}
		ne := Entry{Name: cur, Mode: fs.ModeDir | perm.Perm()}
		if owner != nil {
			ne.UID, ne.GID = owner.UID, owner.GID
		}
		p.set(ne)
	}
	return nil
}

// Mkdir is WORKDIR: BuildKit makes the directory, and its missing
// parents, 0755 and owned by the USER in effect (nil: root).
func (p *Planner) Mkdir(dir string, owner *Owner) error {
	resolved, err := Resolve(p, dir)
	if err != nil {
		return err
	}
	return p.MkdirAll(resolved, 0o755, owner)
}

// CopySpec is one source of a COPY or ADD, with the options of the
// instruction.
type CopySpec struct {
	Source Source
	// Path is the source as the instruction names it, after expansion:
	// relative to the source's root (a leading slash is the root too),
	// wildcards allowed. A wildcard that matches nothing copies nothing.
	Path string
	// Dest is the absolute destination; a trailing slash (or "/.") makes
	// it a directory.
	Dest string
	// Owner of everything copied and created (--chown); nil keeps each
	// source entry's owner and creates directories as root.
	Owner *Owner
	// Chmod gives a copied entry its mode from its current one (--chmod);
	// nil keeps it. DirMode is the mode of the directories the copy
	// creates for the destination (0755, or an octal --chmod's bits).
	Chmod   func(fs.FileMode) fs.FileMode
	DirMode fs.FileMode
	// Excludes are --exclude patterns, matched against paths inside a
	// copied directory.
	Excludes []string
	// Unpack extracts a source that is a local archive (ADD).
	Unpack bool
}

// Copy applies one source of a COPY or ADD.
func (p *Planner) Copy(s CopySpec) error {
	if s.DirMode == 0 {
		s.DirMode = 0o755
	}
	src := clean(s.Path)
	matches := []string{src}
	if hasWildcard(src) {
		var err error
		if matches, err = matchWildcard(s.Source, src); err != nil {
			return err
		}
		if len(matches) == 0 {
			return nil
		}
	}
	var excl *patternmatcher.PatternMatcher
	if len(s.Excludes) > 0 {
		var err error
		if excl, err = patternmatcher.New(s.Excludes); err != nil {
			return fmt.Errorf("--exclude: %w", err)
		}
	}
	for _, m := range matches {
		if s.Unpack {
			ok, err := p.unpack(s, m)
			if err != nil {
				return err
			}
			if ok {
				continue
			}
		}
		if err := p.copyOne(s, m, excl); err != nil {
			return err
		}
	}
	return nil
}

// NotFoundError is a source that does not exist.
type NotFoundError struct{ Path string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("%q not found", "/"+e.Path) }

// copyOne is fsutil's Copy of one source path.
func (p *Planner) copyOne(s CopySpec, src string, excl *patternmatcher.PatternMatcher) error {
	followed, err := Resolve(s.Source, src)
	if err != nil {
		return err
	}
	fi, ok := s.Source.Lstat(followed)
	if !ok {
		return &NotFoundError{Path: src}
	}
	dest := s.Dest
	// The directory the destination needs: the destination itself when it
	// ends with a slash, else its parent.
	ensure := dest
	if d, f := path.Split(dest); f != "" && f != "." {
		ensure = d
	}
	resolved, err := Resolve(p, ensure)
	if err != nil {
		return err
	}
	if err := p.MkdirAll(resolved, s.DirMode, s.Owner); err != nil {
		return err
	}
	dst, err := Resolve(p, dest)
	if err != nil {
		return err
	}
	de, exists := p.Lstat(dst)
	target := dst
	srcIsDir := fi.Mode.IsDir()
	if !srcIsDir && exists && de.Mode.IsDir() {
		target = strings.TrimPrefix(dst+"/"+path.Base("/"+src), "/")
	}
	parent := parentOf(target)
	if srcIsDir && !exists {
		parent = target
	}
	if err := p.MkdirAll(parent, s.DirMode, s.Owner); err != nil {
		return err
	}
	return p.copy(s, excl, followed, "", target, false)
}

// copy is fsutil's copier.copy: src (in the source) to target (in the
// stage); overwrite is false for the top of the copy, whose existing
// directory keeps its attributes.
func (p *Planner) copy(s CopySpec, excl *patternmatcher.PatternMatcher, src, comps, target string, overwrite bool) error {
	excluded := false
	if comps != "" && excl != nil {
		m, err := excl.MatchesOrParentMatches(comps)
		if err != nil {
			return err
		}
		excluded = m
		if excluded && !excl.Exclusions() {
			return nil
		}
	}
	fi, ok := s.Source.Lstat(src)
	if !ok {
		return &NotFoundError{Path: src}
	}
	if excluded && !fi.Mode.IsDir() {
		return nil
	}
	te, texists := p.Lstat(target)
	if !fi.Mode.IsDir() && texists && te.Mode.IsDir() {
		return fmt.Errorf("cannot replace the directory /%s with a file", target)
	}
	if fi.Mode.IsDir() {
		created := false
		if !excluded {
			switch {
			case !texists:
				created = true
			case !te.Mode.IsDir():
				return fmt.Errorf("cannot copy a directory to /%s, which is not a directory", target)
			}
		}
		if created || (overwrite && !excluded) {
			e := p.attributes(s, fi, target)
			if !created {
				// An existing directory below the top takes the source's
				// mode and owner (fsutil chmods and chowns it).
				e.Xattrs = mergeXattrs(te.Xattrs, e.Xattrs)
			}
			p.set(e)
		}
		names, err := s.Source.ReadDir(src)
		if err != nil {
			return fmt.Errorf("reading /%s: %w", src, err)
		}
		for _, n := range names {
			if err := p.copy(s, excl, joinName(src, n), joinName(comps, n), joinName(target, n), true); err != nil {
				return err
			}
		}
		return nil
	}
	e := p.attributes(s, fi, target)
	if fi.Mode.IsRegular() && fi.Inode != ([2]uint64{}) {
		if first, ok := p.inodes[fi.Inode]; ok && first != target {
			e.Hardlink = first
		} else {
			p.inodes[fi.Inode] = target
		}
	}
	p.set(e)
	return nil
}

// attributes are what a copied entry gets: the source's type, content,
// link and xattrs; its owner unless --chown; its mode through --chmod
// (a symbolic link keeps 0777).
func (p *Planner) attributes(s CopySpec, fi Entry, target string) Entry {
	e := fi
	e.Name = target
	e.Hardlink = ""
	e.Inode = [2]uint64{}
	if s.Owner != nil {
		e.UID, e.GID = s.Owner.UID, s.Owner.GID
	}
	if s.Chmod != nil && e.Mode&fs.ModeSymlink == 0 {
		e.Mode = e.Mode&(fs.ModeType|fs.ModeCharDevice) | s.Chmod(e.Mode)&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	}
	return e
}

func mergeXattrs(old, src map[string]string) map[string]string {
	if len(old) == 0 {
		return src
	}
	out := map[string]string{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range src {
		out[k] = v
	}
	return out
}

func joinName(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func hasWildcard(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// matchWildcard is fsutil's ResolveWildcards: the part before the first
// component with a wildcard is resolved (links followed), and every path
// below it whose remainder matches is a source; a matching directory is
// not descended into. Matches are in walk (lexical) order.
func matchWildcard(src Source, p string) ([]string, error) {
	parts := strings.Split(p, "/")
	i := 0
	for i < len(parts) && !hasWildcard(parts[i]) {
		i++
	}
	prefix := strings.Join(parts[:i], "/")
	pattern := strings.Join(parts[i:], "/")
	base, err := Resolve(src, prefix)
	if err != nil {
		return nil, err
	}
	if e, ok := src.Lstat(base); !ok || !e.Mode.IsDir() {
		return nil, nil
	}
	var out []string
	var walk func(rel string) error
	walk = func(rel string) error {
		names, err := src.ReadDir(joinName(base, rel))
		if err != nil {
			return err
		}
		for _, n := range names {
			r := joinName(rel, n)
			if ok, _ := path.Match(pattern, r); ok {
				out = append(out, joinName(base, r))
				continue
			}
			if e, ok := src.Lstat(joinName(base, r)); ok && e.Mode.IsDir() {
				if err := walk(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return out, nil
}

// maxArchiveEntries bounds what ADD unpacks from one archive.
const maxArchiveEntries = 1 << 20

// unpack is BuildKit's ADD of a local archive: when the source (links
// followed) is a regular file that decompresses to a tar, the
// destination is made a directory (0755, --chown) and the archive is
// extracted into it as moby's untar does: the archive's root entry is
// skipped, a directory entry over an existing directory gives it the
// entry's attributes, anything else replaces what is there, missing
// parents are created 0755 root, --chown owns every entry.
func (p *Planner) unpack(s CopySpec, src string) (bool, error) {
	followed, err := Resolve(s.Source, src)
	if err != nil {
		return false, err
	}
	fi, ok := s.Source.Lstat(followed)
	if !ok || !fi.Mode.IsRegular() || fi.Open == nil {
		return false, nil
	}
	rc, err := fi.Open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	r, err := decompressed(br)
	if err != nil {
		return false, nil
	}
	tr := tar.NewReader(r)
	first, err := tr.Next()
	if err != nil {
		return false, nil // not a tar: copied as a file
	}
	dest, err := Resolve(p, s.Dest)
	if err != nil {
		return true, err
	}
	if err := p.MkdirAll(dest, 0o755, s.Owner); err != nil {
		return true, err
	}
	var total int64
	n := 0
	for hdr := first; hdr != nil; {
		if n++; n > maxArchiveEntries {
			return true, fmt.Errorf("ADD %s: the archive has more than %d entries; COPY it and unpack it in a RUN instead", src, maxArchiveEntries)
		}
		if err := p.untarEntry(s, src, dest, tr, hdr, &total); err != nil {
			return true, err
		}
		hdr, err = tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return true, fmt.Errorf("ADD %s: reading the archive: %w", src, err)
		}
	}
	return true, nil
}

func (p *Planner) untarEntry(s CopySpec, src, dest string, tr *tar.Reader, hdr *tar.Header, total *int64) error {
	for _, part := range strings.Split(hdr.Name, "/") {
		if part == ".." {
			return fmt.Errorf("ADD %s: archive entry %q leaves the destination with ../; refusing the archive", src, hdr.Name)
		}
	}
	rel := clean(hdr.Name)
	name := joinName(dest, rel)
	existing, exists := p.Lstat(name)
	if rel == "" {
		if exists && existing.Mode.IsDir() {
			return nil // the archive's root: the destination stays as it is
		}
		name = dest
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if err := p.MkdirAll(parentOf(name), 0o755, nil); err != nil {
		return fmt.Errorf("ADD %s: %w", src, err)
	}
	var e Entry
	if hdr.Typeflag == tar.TypeLink {
		target := joinName(dest, clean(hdr.Linkname))
		t, ok := p.Lstat(target)
		if !ok || !t.Mode.IsRegular() {
			return fmt.Errorf("ADD %s: archive entry %q is a hard link to %q, which the archive does not have before it", src, hdr.Name, hdr.Linkname)
		}
		e = t
		e.Name = name
		e.Hardlink = target
		if first, ok := p.changed[target]; ok && first.Hardlink != "" {
			e.Hardlink = first.Hardlink
		}
	} else {
		var ok bool
		if e, ok = EntryFromTar(name, hdr); !ok {
			return fmt.Errorf("ADD %s: archive entry %q is of tar type %q, which build-push does not unpack", src, hdr.Name, hdr.Typeflag)
		}
		if e.Mode.IsRegular() {
			*total += hdr.Size
			if *total > maxArchive {
				return fmt.Errorf("ADD %s: the archive unpacks to more than %d bytes; COPY it and unpack it in a RUN instead", src, int64(maxArchive))
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("ADD %s: reading %s: %w", src, hdr.Name, err)
			}
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil }
			e.Size = int64(len(data))
		}
	}
	if s.Owner != nil {
		e.UID, e.GID = s.Owner.UID, s.Owner.GID
	}
	if exists && !(existing.Mode.IsDir() && e.Mode.IsDir()) {
		p.remove(name)
	}
	p.set(e)
	return nil
}

// remove drops what the step wrote at and below name (the stage's own
// entries there are hidden by the new entry that replaces it).
func (p *Planner) remove(name string) {
	for k := range p.changed {
		if k == name || strings.HasPrefix(k, name+"/") {
			delete(p.changed, k)
		}
	}
}

// HostFile reads a host file as a source entry (for tests and sources
// that are single files).
func HostFile(name, host string) (Entry, error) {
	fi, err := os.Lstat(host)
	if err != nil {
		return Entry{}, err
	}
	return EntryOf(name, host, fi), nil
}
