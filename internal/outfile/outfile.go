// Package outfile writes the files a tool is asked to leave for later
// steps (digest-file, ref-file, image-name-with-digest-file): the parent
// directories are made, and the file appears whole or not at all, so a
// later job never reads half a reference.
package outfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path with mode 0644, through a temporary file in the
// same directory renamed over path.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("renaming into place: %w", err)
	}
	return nil
}
