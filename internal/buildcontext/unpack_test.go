package buildcontext

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-ci/hoist/internal/redact"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/stretchr/testify/require"
)

// entry is one member of a test tarball.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarball(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := pgzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// app is a small build context: a Dockerfile and a file to COPY.
func app(t testing.TB) []byte {
	return tarball(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./Dockerfile", body: "FROM scratch\nCOPY hello.txt /\n"},
		entry{name: "./hello.txt", body: "hello\n"},
		entry{name: "./sub/", typ: tar.TypeDir},
		entry{name: "./sub/Dockerfile.sub", body: "FROM scratch\n"},
		entry{name: "./bin/run.sh", body: "#!/bin/sh\n", mode: 0o755},
	)
}

func fetchTar(t *testing.T, data []byte, o Options) (*Context, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "context.tar.gz")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	o.TempDir = t.TempDir()
	c, err := Fetch(context.Background(), "tar://"+p, o)
	if c != nil {
		t.Cleanup(func() { require.NoError(t, c.Close()) })
	}
	return c, err
}

func TestTarballCompressions(t *testing.T) {
	for name, data := range map[string][]byte{"gzip": gz(t, app(t)), "zstd": zst(t, app(t)), "plain tar": app(t)} {
		t.Run(name, func(t *testing.T) {
			c, err := fetchTar(t, data, Options{})
			require.NoError(t, err)
			b, err := os.ReadFile(filepath.Join(c.Dir, "hello.txt"))
			require.NoError(t, err)
			require.Equal(t, "hello\n", string(b))
			fi, err := os.Stat(filepath.Join(c.Dir, "bin", "run.sh"))
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "modes are kept")
			require.Equal(t, int64(len("FROM scratch\nCOPY hello.txt /\n")+len("hello\n")+len("FROM scratch\n")+len("#!/bin/sh\n")), c.Bytes)
		})
	}
}

func TestStdin(t *testing.T) {
	c, err := Fetch(context.Background(), "tar://stdin", Options{Stdin: bytes.NewReader(gz(t, app(t))), TempDir: t.TempDir()})
	require.NoError(t, err)
	defer c.Close()
	require.FileExists(t, filepath.Join(c.Dir, "Dockerfile"))
	root := filepath.Dir(c.Dir)
	require.NoError(t, c.Close())
	require.NoDirExists(t, root, "Close removes the unpacked context")
}

// TestHostileTarballs: what a context tarball holds cannot create, change
// or remove anything outside the context directory.
func TestHostileTarballs(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("untouched\n"), 0o644))
	tests := []struct {
		name    string
		entries []entry
		check   func(t *testing.T, dir string)
	}{
		{"dot-dot names", []entry{{name: "../../../../" + strings.TrimPrefix(victim, "/"), body: "pwned"}, {name: "a/../../escape", body: "pwned"}},
			func(t *testing.T, dir string) {
				require.FileExists(t, filepath.Join(dir, strings.TrimPrefix(victim, "/")), "kept inside, under the same path")
				require.FileExists(t, filepath.Join(dir, "escape"))
			}},
		{"absolute names", []entry{{name: victim, body: "pwned"}},
			func(t *testing.T, dir string) {
				require.FileExists(t, filepath.Join(dir, strings.TrimPrefix(victim, "/")))
			}},
		{"write through a symlink to outside", []entry{{name: "link", typ: tar.TypeSymlink, link: outside}, {name: "link/victim", body: "pwned"}},
			func(t *testing.T, dir string) {
				target, err := os.Readlink(filepath.Join(dir, "link"))
				require.NoError(t, err)
				require.Equal(t, outside, target, "the link stays a link")
				require.FileExists(t, filepath.Join(dir, strings.TrimPrefix(outside, "/"), "victim"), "followed as if the context were the root")
			}},
		{"relative symlink climbing out", []entry{{name: "up", typ: tar.TypeSymlink, link: "../../../../../../.."}, {name: "up/" + strings.TrimPrefix(victim, "/"), body: "pwned"}},
			func(t *testing.T, dir string) {
				require.FileExists(t, filepath.Join(dir, strings.TrimPrefix(victim, "/")))
			}},
		{"hardlink to a file outside", []entry{{name: "hard", typ: tar.TypeLink, link: victim}},
			nil}, // refused: the target is resolved inside the context, where it does not exist
		{"whiteout names are files", []entry{{name: "keep", body: "k"}, {name: ".wh.keep", body: "a file"}, {name: ".wh..wh..opq", body: "also a file"}},
			func(t *testing.T, dir string) {
				require.FileExists(t, filepath.Join(dir, "keep"))
				require.FileExists(t, filepath.Join(dir, ".wh.keep"))
				require.FileExists(t, filepath.Join(dir, ".wh..wh..opq"))
			}},
		{"device nodes are skipped", []entry{{name: "null", typ: tar.TypeChar}, {name: "fifo", typ: tar.TypeFifo}, {name: "ok", body: "x"}},
			func(t *testing.T, dir string) {
				require.NoFileExists(t, filepath.Join(dir, "null"))
				require.NoFileExists(t, filepath.Join(dir, "fifo"))
				require.FileExists(t, filepath.Join(dir, "ok"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fetchTar(t, gz(t, tarball(t, tt.entries...)), Options{})
			if tt.check == nil {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				tt.check(t, c.Dir)
			}
			b, err := os.ReadFile(victim)
			require.NoError(t, err)
			require.Equal(t, "untouched\n", string(b))
			entries, err := os.ReadDir(outside)
			require.NoError(t, err)
			require.Len(t, entries, 1, "nothing was created outside")
		})
	}
}

func TestSizeLimit(t *testing.T) {
	// A bomb: 64 MiB of zeros, a few KiB compressed.
	bomb := gz(t, tarball(t, entry{name: "zeros", body: strings.Repeat("\x00", 64<<20)}))
	require.Less(t, len(bomb), 1<<20)
	_, err := fetchTar(t, bomb, Options{MaxSize: 8 << 20})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "8388608 bytes unpacked")
	require.ErrorContains(t, err, "raise context-max-size")

	// The compressed stream is capped too.
	_, err = fetchTar(t, gz(t, app(t)), Options{MaxSize: 64})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "compressed")

	// Exactly at the limit is fine.
	plain := app(t)
	_, err = fetchTar(t, plain, Options{MaxSize: int64(len(plain))})
	require.NoError(t, err)
}

func TestNotATarball(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":    nil,
		"html":     []byte("<html><body>Access denied</body></html>\n" + strings.Repeat(" ", 600)),
		"no files": gz(t, tarball(t)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := fetchTar(t, data, Options{})
			require.Error(t, err)
			require.Contains(t, err.Error(), "fetching the context tar://")
		})
	}
}

func TestParse(t *testing.T) {
	tests := map[string]Kind{
		".":                         KindLocal,
		"examples/app":              KindLocal,
		"dir:///workspace":          KindLocal,
		"s3://b/k.tar.gz":           KindS3,
		"gs://b/k.tar.gz":           KindGCS,
		"tar://stdin":               KindTar,
		"tar:///tmp/c.tar.gz":       KindTar,
		"git://github.com/a/b.git":  KindGit,
		"https://example.com/c.tgz": KindHTTPS,
		"https://acct.blob.core.windows.net/c/k.tar.gz":       KindAzure,
		"https://acct.blob.core.usgovcloudapi.net/c/k.tar.gz": KindAzure,
	}
	for in, want := range tests {
		src, err := Parse(in, nil)
		require.NoError(t, err, in)
		require.Equal(t, want, src.Kind, in)
	}
	conn := func(k string) string {
		if k == "AZURE_STORAGE_CONNECTION_STRING" {
			return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
		}
		return ""
	}
	src, err := Parse("http://127.0.0.1:10000/devstoreaccount1/c/k.tar.gz", conn)
	require.NoError(t, err)
	require.Equal(t, KindAzure, src.Kind, "under the connection string's blob endpoint")

	for in, want := range map[string]string{
		"http://example.com/c.tgz":           "plain http is refused",
		"ftp://example.com/c.tgz":            "unknown prefix ftp://",
		"s3://":                              "names nothing",
		"https://u:pw@host/x?sig=SECRET&a=b": "",
	} {
		_, err := Parse(in, nil)
		if want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, want, in)
	}
	require.True(t, IsRemote("s3://b/k"))
	require.False(t, IsRemote("dir:///w"))
	require.False(t, IsRemote("."))
}

func TestRedactURL(t *testing.T) {
	require.Equal(t, "https://***@host/x?…", redact.URL("https://u:pw@host/x?sig=SECRET&a=b"))
	require.Equal(t, "s3://b/k.tar.gz", redact.URL("s3://b/k.tar.gz"))
	require.Equal(t, "git://***@github.com/a/b.git", redact.URL("git://TOKEN@github.com/a/b.git"))
}

func TestResolve(t *testing.T) {
	c, err := fetchTar(t, gz(t, tarball(t,
		entry{name: "sub/Dockerfile", body: "FROM scratch\n"},
		entry{name: "out", typ: tar.TypeSymlink, link: "/etc"},
	)), Options{})
	require.NoError(t, err)
	dir, df, err := Resolve(c.Dir, "", "")
	require.NoError(t, err)
	require.Equal(t, c.Dir, dir)
	require.Equal(t, filepath.Join(c.Dir, "Dockerfile"), df)

	dir, df, err = Resolve(c.Dir, "sub", "")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(c.Dir, "sub"), dir)
	require.Equal(t, filepath.Join(c.Dir, "sub", "Dockerfile"), df)

	_, df, err = Resolve(c.Dir, "", "sub/Dockerfile")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(c.Dir, "sub", "Dockerfile"), df, "relative to the context")

	_, df, err = Resolve(c.Dir, "", "../../../etc/passwd")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(df, c.Dir+string(filepath.Separator)), "kept inside: %s", df)

	dir, _, err = Resolve(c.Dir, "out", "")
	if err == nil {
		require.True(t, strings.HasPrefix(dir, c.Dir), "a symlinked sub-path stays inside: %s", dir)
	}
	_, _, err = Resolve(c.Dir, "missing", "")
	require.ErrorContains(t, err, "is not a directory of the context")

	_, df, err = Resolve(c.Dir, "", "/abs/Dockerfile")
	require.NoError(t, err)
	require.Equal(t, "/abs/Dockerfile", df)
}
