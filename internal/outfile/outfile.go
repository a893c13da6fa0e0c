// Package outfile writes files that later steps read (digest-file,
// ref-file, dotenv reports, gate's JUnit/Cobertura reports): the parent
// directories are made, and the file appears whole or not at all — it is
// written aside and renamed into place — so a later job never reads half a
// reference or half a report.
package outfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes data to path with mode 0644.
func Write(path string, data []byte) error {
	return WriteWith(path, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// WriteWith writes what fn writes to path with mode 0644, through a
// temporary file in the same directory renamed over path; when fn fails,
// path is left as it was.
func WriteWith(path string, fn func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	err = fn(f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("renaming into place: %w", err)
	}
	return nil
}
