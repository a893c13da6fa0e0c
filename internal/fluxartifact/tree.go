// Package fluxartifact is the Flux OCI artifact format: the content tarball
// and the manifest that `flux push artifact` writes and Flux's
// source-controller reads (OCIRepository), and the same content as the
// plain files a Flux Bucket source reads.
//
// The tarball follows Flux's rules (github.com/fluxcd/pkg/tar, used by
// `flux push artifact`): entries in directory-walk order, paths relative to
// the root ("." first), regular files and directories only, uid/gid 0, no
// user or group names, zero times, stdlib gzip. Its bytes are those of
// `flux push artifact` for the same directory, so the layer digest is the
// same — with two differences that make the digest depend on the content
// alone: modes are normalised (0644, or 0755 for directories and
// executables) whatever the checkout's umask, and `.sourceignore` files are
// honoured as source-controller honours them for Git and Bucket sources.
package fluxartifact

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"golang.org/x/sync/errgroup"
)

// IgnoreFile is the name of the ignore files read in every directory.
const IgnoreFile = ".sourceignore"

// DefaultIgnore are the patterns `flux push artifact` leaves out by default
// (its --ignore-paths: fluxcd/pkg/sourceignore's ExcludeVCS and ExcludeExt).
var DefaultIgnore = []string{
	".git/", ".gitignore", ".gitmodules", ".gitattributes",
	"*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
}

// File is one entry of the content: a directory or a regular file.
type File struct {
	// Path is slash-separated and relative to the root; the root is ".".
	Path string
	Dir  bool
	// Mode is the normalised permission: 0755 for directories and files with
	// an execute bit, 0644 for other files.
	Mode fs.FileMode
	Data []byte
}

// Tree is the content of an artifact, in directory-walk order (lexical per
// directory, parents before children), the root first.
type Tree struct {
	Files []File
	// Skipped are the symlinks and special files left out (relative paths).
	Skipped []string
}

// Regular returns the regular files, in order.
func (t *Tree) Regular() []File {
	out := make([]File, 0, len(t.Files))
	for _, f := range t.Files {
		if !f.Dir {
			out = append(out, f)
		}
	}
	return out
}

// Size is the total size of the regular files.
func (t *Tree) Size() int64 {
	var n int64
	for _, f := range t.Files {
		n += int64(len(f.Data))
	}
	return n
}

// Collect reads the directory root: every directory and regular file that
// no ignore pattern excludes. Patterns are .gitignore syntax: DefaultIgnore,
// then extra, then each directory's .sourceignore (scoped to that
// directory). Symlinks and special files are left out, as Flux leaves them
// out, and listed in Tree.Skipped.
func Collect(root string, extra []string) (*Tree, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", root, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	var patterns []gitignore.Pattern
	negation := false
	add := func(lines []string, domain []string) {
		for _, l := range lines {
			if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(l), "!") {
				negation = true
			}
			patterns = append(patterns, gitignore.ParsePattern(l, domain))
		}
	}
	add(DefaultIgnore, nil)
	add(extra, nil)
	if err := loadIgnoreFiles(root, nil, add); err != nil {
		return nil, err
	}
	matcher := gitignore.NewMatcher(patterns)

	t := &Tree{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		typ := d.Type()
		if !typ.IsRegular() && !typ.IsDir() {
			t.Skipped = append(t.Skipped, rel)
			return nil
		}
		if rel != "." && matcher.Match(strings.Split(rel, "/"), d.IsDir()) {
			// Flux matches every path on its own, so a negation can bring
			// back a file under an excluded directory; without one, the
			// directory's contents need not be read.
			if d.IsDir() && !negation {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			t.Files = append(t.Files, File{Path: rel, Dir: true, Mode: 0o755})
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if fi.Mode().Perm()&0o111 != 0 {
			mode = 0o755
		}
		t.Files = append(t.Files, File{Path: rel, Mode: mode})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", root, err)
	}
	// The contents are read in parallel: a deploy tree is many small files,
	// and each costs a few system calls.
	var g errgroup.Group
	g.SetLimit(readers)
	for i := range t.Files {
		if t.Files[i].Dir {
			continue
		}
		g.Go(func() error {
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(t.Files[i].Path)))
			if err != nil {
				return fmt.Errorf("reading %s: %w", t.Files[i].Path, err)
			}
			t.Files[i].Data = data
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return t, nil
}

// readers bounds the files read at once.
const readers = 8

// loadIgnoreFiles reads the .sourceignore of dir and of every directory
// below it (not below .git), each scoped to its own directory.
func loadIgnoreFiles(dir string, domain []string, add func([]string, []string)) error {
	data, err := os.ReadFile(filepath.Join(dir, IgnoreFile))
	switch {
	case err == nil:
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		add(lines, domain)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s: %w", filepath.Join(dir, IgnoreFile), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != ".git" {
			sub := append(append([]string(nil), domain...), e.Name())
			if err := loadIgnoreFiles(filepath.Join(dir, e.Name()), sub, add); err != nil {
				return err
			}
		}
	}
	return nil
}

// Lookup returns the regular file at p (slash-separated, relative).
func (t *Tree) Lookup(p string) (File, bool) {
	p = path.Clean(p)
	for _, f := range t.Files {
		if f.Path == p && !f.Dir {
			return f, true
		}
	}
	return File{}, false
}
