package testrig

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FileEntry is one path of an image's filesystem, as a container sees it:
// the attributes a differential test compares (times aside).
type FileEntry struct {
	Type   string // dir, file, symlink, char, block, fifo
	Mode   int64  // permission bits with setuid, setgid and sticky (07777)
	UID    int
	GID    int
	Size   int64
	Link   string // a symlink's target
	Digest string // a file's content, sha256 hex
	Dev    string // major:minor of a device node
	Xattrs map[string]string
}

func (e FileEntry) String() string {
	s := fmt.Sprintf("%s %04o %d:%d", e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case "file":
		s += fmt.Sprintf(" size=%d sha256=%.12s", e.Size, e.Digest)
	case "symlink":
		s += " -> " + e.Link
	case "char", "block":
		s += " dev=" + e.Dev
	}
	if len(e.Xattrs) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(e.Xattrs)) {
			kv = append(kv, fmt.Sprintf("%s=%q", k, e.Xattrs[k]))
		}
		s += " xattrs{" + strings.Join(kv, ",") + "}"
	}
	return s
}

// FlattenImage applies an image's layers in order (whiteouts and opaque
// directories included) and returns every path (no leading slash) with its
// entry. A hard link becomes a copy of its target's entry.
func FlattenImage(img v1.Image) (map[string]FileEntry, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	fsys := map[string]FileEntry{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		err = applyTar(rc, fsys)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return fsys, nil
}

func applyTar(r io.Reader, fsys map[string]FileEntry) error {
	tr := tar.NewReader(r)
	added := map[string]FileEntry{}
	var order []string
	var opaque, gone []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := strings.Trim(path.Clean("/"+hdr.Name), "/")
		dir, base := path.Split(name)
		dir = strings.Trim(dir, "/")
		switch {
		case base == ".wh..wh..opq":
			opaque = append(opaque, dir)
			continue
		case strings.HasPrefix(base, ".wh."):
			gone = append(gone, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		case name == "":
			continue
		}
		e := FileEntry{Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid}
		for k, v := range hdr.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[x] = v
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.Type = "dir"
		case tar.TypeReg:
			e.Type = "file"
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return fmt.Errorf("reading %s: %w", name, err)
			}
			e.Size, e.Digest = n, hex.EncodeToString(h.Sum(nil))
		case tar.TypeSymlink:
			e.Type, e.Link = "symlink", hdr.Linkname
		case tar.TypeLink:
			target := strings.Trim(path.Clean("/"+hdr.Linkname), "/")
			t, ok := added[target]
			if !ok {
				t, ok = fsys[target]
			}
			if !ok {
				return fmt.Errorf("hard link %s to %s, which the image does not have", name, hdr.Linkname)
			}
			e = t
		case tar.TypeChar, tar.TypeBlock:
			e.Type = map[byte]string{tar.TypeChar: "char", tar.TypeBlock: "block"}[hdr.Typeflag]
			e.Dev = fmt.Sprintf("%d:%d", hdr.Devmajor, hdr.Devminor)
		case tar.TypeFifo:
			e.Type = "fifo"
		default:
			return fmt.Errorf("%s: unexpected tar type %q", name, hdr.Typeflag)
		}
		if _, seen := added[name]; !seen {
			order = append(order, name)
		}
		added[name] = e
	}
	// Whiteouts hide what the layers below have; this layer's own entries
	// stay, whatever their order in the tar.
	for _, d := range opaque {
		for k := range fsys {
			if d == "" || strings.HasPrefix(k, d+"/") {
				delete(fsys, k)
			}
		}
	}
	for _, g := range gone {
		for k := range fsys {
			if k == g || strings.HasPrefix(k, g+"/") {
				delete(fsys, k)
			}
		}
	}
	for _, name := range order {
		e := added[name]
		if old, ok := fsys[name]; ok && old.Type == "dir" && e.Type != "dir" {
			for k := range fsys {
				if strings.HasPrefix(k, name+"/") {
					delete(fsys, k)
				}
			}
		}
		fsys[name] = e
	}
	return nil
}

// DiffFS lists the differences between two flattened filesystems, one line
// per path, sorted: "path: want <entry>, got <entry>".
func DiffFS(want, got map[string]FileEntry) []string {
	var out []string
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !gok:
			out = append(out, fmt.Sprintf("/%s: want %s, got nothing", k, w))
		case !wok:
			out = append(out, fmt.Sprintf("/%s: want nothing, got %s", k, g))
		case !reflect.DeepEqual(w, g) && !(len(w.Xattrs) == 0 && len(g.Xattrs) == 0 && w.String() == g.String()):
			out = append(out, fmt.Sprintf("/%s: want %s, got %s", k, w, g))
		}
	}
	return out
}

// ConfigView is the part of an image config a differential test compares.
type ConfigView struct {
	Env          []string
	Cmd          []string
	Entrypoint   []string
	WorkingDir   string
	User         string
	ExposedPorts []string
	Volumes      []string
	Labels       map[string]string
	Shell        []string
	Healthcheck  *v1.HealthConfig
	StopSignal   string
	OnBuild      []string
	OS, Arch     string
	// History is created_by and empty_layer of each entry.
	History []string
}

// ViewConfig extracts the ConfigView of a config file. createdBy rewrites
// each history line first (a test drops a builder's own marker with it).
func ViewConfig(cf *v1.ConfigFile, createdBy func(string) string) ConfigView {
	c := cf.Config
	v := ConfigView{Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, User: c.User,
		Labels: c.Labels, Shell: c.Shell, Healthcheck: c.Healthcheck, StopSignal: c.StopSignal, OnBuild: c.OnBuild,
		OS: cf.OS, Arch: cf.Architecture}
	v.ExposedPorts = slices.Sorted(maps.Keys(c.ExposedPorts))
	v.Volumes = slices.Sorted(maps.Keys(c.Volumes))
	for _, h := range cf.History {
		s := h.CreatedBy
		if createdBy != nil {
			s = createdBy(s)
		}
		if h.EmptyLayer {
			s += "  (empty layer)"
		}
		v.History = append(v.History, s)
	}
	return v
}

// DiffConfig lists the fields in which two config views differ.
func DiffConfig(want, got ConfigView) []string {
	var out []string
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range wv.NumField() {
		f := wv.Type().Field(i)
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if f.Name == "History" {
			continue
		}
		if !reflect.DeepEqual(normalizeEmpty(w), normalizeEmpty(g)) {
			out = append(out, fmt.Sprintf("config %s: want %s, got %s", f.Name, show(w), show(g)))
		}
	}
	n := max(len(want.History), len(got.History))
	for i := range n {
		var w, g string
		if i < len(want.History) {
			w = want.History[i]
		}
		if i < len(got.History) {
			g = got.History[i]
		}
		if w != g {
			out = append(out, fmt.Sprintf("history[%d]: want %q, got %q", i, w, g))
		}
	}
	return out
}

// normalizeEmpty treats nil and empty slices and maps alike.
func normalizeEmpty(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map:
		if rv.Len() == 0 {
			return nil
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
	}
	return v
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("%+v", rv.Elem().Interface())
	}
	if rv.Kind() == reflect.Map {
		keys := rv.MapKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%v=%q", k, rv.MapIndex(k)))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, " ") + "}"
	}
	return fmt.Sprintf("%q", v)
}
