package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
)

// Tree is a filesystem known by its entries alone: an image's layers
// applied in order, read without unpacking (headers, and the content of
// the few files asked for). It answers a build step's questions about a
// stage (does /app exist, with which mode; who is user app) without
// writing the stage to a disk.
type Tree struct {
	m map[string]Entry
}

// NewTree is an empty filesystem.
func NewTree() *Tree { return &Tree{m: map[string]Entry{}} }

// Clone copies the tree (entries share their content).
func (t *Tree) Clone() *Tree { return &Tree{m: maps.Clone(t.m)} }

// Len is the number of entries.
func (t *Tree) Len() int { return len(t.m) }

// Lstat returns the entry at name; "" is the root directory.
func (t *Tree) Lstat(name string) (Entry, bool) {
	name = clean(name)
	if name == "" {
		return Entry{Mode: fs.ModeDir | 0o755}, true
	}
	e, ok := t.m[name]
	return e, ok
}

// Apply lays entries (a layer this build made) over the tree: an entry
// that is not a directory replaces a directory and everything below it.
func (t *Tree) Apply(entries []Entry) {
	for _, e := range entries {
		t.put(e)
	}
}

func (t *Tree) put(e Entry) {
	e.Name = clean(e.Name)
	if e.Name == "" {
		return
	}
	if old, ok := t.m[e.Name]; ok && old.Mode.IsDir() && !e.Mode.IsDir() {
		t.removeBelow(e.Name)
	}
	t.m[e.Name] = e
}

func (t *Tree) removeBelow(name string) {
	prefix := name + "/"
	for k := range t.m {
		if name == "" || strings.HasPrefix(k, prefix) {
			delete(t.m, k)
		}
	}
}

// ApplyTar lays a layer's tar stream over the tree, whiteouts and opaque
// directories hiding what the layers below have. keep names the regular
// files whose content is held (read into memory); the others are known
// by their attributes only (Open is nil).
func (t *Tree) ApplyTar(r io.Reader, keep func(name string, size int64) bool) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<16))
	var entries []Entry
	var opaque, gone []string
	own := map[string]int{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading a layer: %w", err)
		}
		name := clean(hdr.Name)
		dir, base := parentOf(name), name[strings.LastIndexByte(name, '/')+1:]
		switch {
		case base == ".wh..wh..opq":
			opaque = append(opaque, dir)
			continue
		case strings.HasPrefix(base, ".wh."):
			gone = append(gone, joinName(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		case name == "":
			continue
		}
		var e Entry
		if hdr.Typeflag == tar.TypeLink {
			target := clean(hdr.Linkname)
			if i, ok := own[target]; ok {
				e = entries[i]
			} else if te, ok := t.m[target]; ok {
				e = te
			} else {
				continue
			}
			e.Name = name
		} else {
			var ok bool
			if e, ok = EntryFromTar(name, hdr); !ok {
				continue
			}
			if e.Mode.IsRegular() && keep != nil && keep(name, hdr.Size) {
				data, err := io.ReadAll(tr)
				if err != nil {
					return fmt.Errorf("reading %s from a layer: %w", name, err)
				}
				e.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
			}
		}
		own[name] = len(entries)
		entries = append(entries, e)
	}
	for _, d := range opaque {
		t.removeBelow(d)
	}
	for _, g := range gone {
		delete(t.m, g)
		t.removeBelow(g)
	}
	for _, e := range entries {
		t.put(e)
	}
	return nil
}

// ReadFile returns the content of a regular file the tree holds, links
// followed inside the tree; false when there is none or its content was
// not kept.
func (t *Tree) ReadFile(name string) ([]byte, bool, error) {
	p, err := Resolve(t, name)
	if err != nil {
		return nil, false, err
	}
	e, ok := t.m[p]
	if !ok || !e.Mode.IsRegular() || e.Open == nil {
		return nil, false, nil
	}
	rc, err := e.Open()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return data, err == nil, err
}

// treeFile is a Tree as JSON: the entries with their attributes, and the
// content of the files the tree holds.
type treeFile struct {
	Version int         `json:"version"`
	Entries []treeEntry `json:"entries"`
}

type treeEntry struct {
	Name     string            `json:"n"`
	Mode     uint32            `json:"m"`
	UID      int               `json:"u,omitempty"`
	GID      int               `json:"g,omitempty"`
	Linkname string            `json:"l,omitempty"`
	Size     int64             `json:"s,omitempty"`
	Devmajor int64             `json:"dM,omitempty"`
	Devminor int64             `json:"dm,omitempty"`
	Xattrs   map[string]string `json:"x,omitempty"`
	Data     []byte            `json:"d,omitempty"`
}

// MarshalJSON writes the tree's entries (sorted), with the content it
// holds.
func (t *Tree) MarshalJSON() ([]byte, error) {
	f := treeFile{Version: 1, Entries: make([]treeEntry, 0, len(t.m))}
	names := slices.Sorted(maps.Keys(t.m))
	for _, n := range names {
		e := t.m[n]
		te := treeEntry{Name: n, Mode: uint32(e.Mode), UID: e.UID, GID: e.GID, Linkname: e.Linkname, Size: e.Size,
			Devmajor: e.Devmajor, Devminor: e.Devminor, Xattrs: e.Xattrs}
		if e.Open != nil && e.Mode.IsRegular() {
			rc, err := e.Open()
			if err != nil {
				return nil, err
			}
			te.Data, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
		f.Entries = append(f.Entries, te)
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (t *Tree) UnmarshalJSON(data []byte) error {
	var f treeFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f.Version != 1 {
		return fmt.Errorf("file list version %d: this hoist reads version 1", f.Version)
	}
	t.m = make(map[string]Entry, len(f.Entries))
	for _, te := range f.Entries {
		e := Entry{Name: te.Name, Mode: fs.FileMode(te.Mode), UID: te.UID, GID: te.GID, Linkname: te.Linkname, Size: te.Size,
			Devmajor: te.Devmajor, Devminor: te.Devminor, Xattrs: te.Xattrs}
		if te.Data != nil {
			data := te.Data
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		}
		t.m[clean(te.Name)] = e
	}
	return nil
}
