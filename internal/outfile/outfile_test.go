package outfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteMakesDirectoriesAndReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".hoist", "refs", "api")
	require.NoError(t, Write(p, []byte("reg/acme/api:1.4.2@sha256:1\n")))
	require.NoError(t, Write(p, []byte("reg/acme/api:1.4.3@sha256:2\n")))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "reg/acme/api:1.4.3@sha256:2\n", string(b))
	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, entries, 1, "a temporary file was left behind")
	info, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), info.Mode().Perm())
}

func TestWriteNamesNoFileOnError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	require.Error(t, Write(filepath.Join(blocker, "ref"), []byte("x")))
}

func TestWriteWithFailureKeepsTheOldFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "junit.xml")
	require.NoError(t, Write(p, []byte("old")))
	err := WriteWith(p, func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return errors.New("the report broke off")
	})
	require.ErrorContains(t, err, "broke off")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "old", string(b))
	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, entries, 1, "a temporary file was left behind")
}
