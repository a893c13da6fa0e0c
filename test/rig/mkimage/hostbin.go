package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// hostBinariesLayer installs host executables at their own paths together
// with the shared libraries (and dynamic loader) they need, found the way
// ld.so finds them. The rig's helper image for gitlab-ci-local needs bash and
// rsync; neither is in busybox, and Debian ships rsync dynamically linked.
func hostBinariesLayer(bins []string, epoch time.Time) (v1.Layer, error) {
	dirs, err := librarySearchPath("/etc/ld.so.conf")
	if err != nil {
		return nil, err
	}
	files := map[string]bool{}
	for _, bin := range bins {
		if !filepath.IsAbs(bin) {
			return nil, fmt.Errorf("--host-binary %s: give an absolute path (it is installed at the same path in the image)", bin)
		}
		closure, err := libraryClosure(bin, dirs)
		if err != nil {
			return nil, fmt.Errorf("--host-binary %s: %w", bin, err)
		}
		for _, f := range closure {
			files[f] = true
		}
	}
	paths := make([]string, 0, len(files))
	parents := map[string]bool{}
	for f := range files {
		paths = append(paths, f)
		for d := path.Dir(f); d != "/"; d = path.Dir(d) {
			parents[d] = true
		}
	}
	sort.Strings(paths)
	dirList := make([]string, 0, len(parents))
	for d := range parents {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)

	l := newLayerWriter(epoch)
	for _, d := range dirList {
		l.dir(strings.TrimPrefix(d, "/"), 0o755)
	}
	for _, p := range paths {
		info, err := os.Stat(p) // through symlinks: the image gets the file itself
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		l.file(strings.TrimPrefix(p, "/"), int64(info.Mode().Perm()), data)
	}
	return l.layer()
}

// libraryClosure is bin, its dynamic loader and every shared library it
// loads, directly or through another library.
func libraryClosure(bin string, dirs []string) ([]string, error) {
	seen := map[string]bool{bin: true}
	queue := []string{bin}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		needed, interp, err := elfDependencies(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		var found []string
		if interp != "" {
			found = append(found, interp)
		}
		for _, lib := range needed {
			resolved, err := findLibrary(lib, dirs)
			if err != nil {
				return nil, fmt.Errorf("%s needs %s: %w", p, lib, err)
			}
			found = append(found, resolved)
		}
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				queue = append(queue, f)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

func elfDependencies(p string) (needed []string, interp string, err error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(prog.Open())
		if err != nil {
			return nil, "", fmt.Errorf("reading its interpreter: %w", err)
		}
		interp = string(bytes.TrimRight(data, "\x00"))
	}
	needed, err = f.ImportedLibraries()
	if err != nil {
		return nil, "", fmt.Errorf("reading its shared libraries: %w", err)
	}
	return needed, interp, nil
}

func findLibrary(name string, dirs []string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s", strings.Join(dirs, ":"))
}

// librarySearchPath is the directories of ld.so.conf (following its
// include lines) and then the default ones.
func librarySearchPath(conf string) ([]string, error) {
	var dirs []string
	seen := map[string]bool{}
	var read func(file string, depth int) error
	read = func(file string, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%s: includes nest too deep", file)
		}
		data, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if rest, ok := strings.CutPrefix(line, "include "); ok {
				matches, err := filepath.Glob(strings.TrimSpace(rest))
				if err != nil {
					return fmt.Errorf("%s: include %q: %w", file, rest, err)
				}
				sort.Strings(matches)
				for _, m := range matches {
					if err := read(m, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			if strings.HasPrefix(line, "/") && !seen[line] {
				seen[line] = true
				dirs = append(dirs, line)
			}
		}
		return nil
	}
	if err := read(conf, 0); err != nil {
		return nil, err
	}
	for _, d := range []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"} {
		if !seen[d] {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}
