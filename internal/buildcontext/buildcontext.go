// Package buildcontext fetches a remote build context, in kaniko's
// spellings, and unpacks it into a local directory the build reads from:
//
//	s3://bucket/key.tar.gz                                   AWS S3 or an S3-compatible server
//	gs://bucket/key.tar.gz                                   Google Cloud Storage
//	https://<account>.blob.core.windows.net/<container>/<key>.tar.gz   Azure Blob Storage
//	https://host/path.tar.gz                                 any HTTPS server
//	tar://path.tar.gz, tar://stdin                           a local tarball, standard input
//	git://host/org/repo.git#<ref>#<commit>                   a git repository (shallow)
//
// A tarball (gzip, zstd or plain) is streamed into the extractor that
// unpacks image layers, in its archive mode: nothing it holds can create or
// change anything outside the directory (no "..", no absolute paths, no
// link out), and it is refused once its unpacked size passes Options.MaxSize.
// Symbolic links that point outside stay links: the build's COPY refuses to
// follow them (internal/layer).
//
// Each storage is reached with a thin client over its REST API and the
// credentials hoist's binaries already carry: the AWS SDK's credential chain
// and signer for S3, golang.org/x/oauth2/google for GCS, Shared Key, SAS or
// an Entra ID token (workload identity, client secret, managed identity) for
// Azure Blob, go-git for git. See docs/build-push.md for the variables each
// one reads.
package buildcontext

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/hoist-ci/hoist/internal/extract"
	"github.com/hoist-ci/hoist/internal/redact"
)

// DefaultMaxSize is the unpacked size a remote context may reach when
// Options.MaxSize is 0.
const DefaultMaxSize int64 = 4 << 30

// Options of a fetch.
type Options struct {
	// MaxSize caps the context's unpacked size (and a tarball's compressed
	// size); 0 is DefaultMaxSize.
	MaxSize int64
	// Getenv reads the variables each kind of context reads (S3_ENDPOINT,
	// AWS_REGION, AZURE_STORAGE_ACCESS_KEY, GIT_PASSWORD, ...). Nil reads
	// nothing.
	Getenv func(string) string
	// Stdin is read by tar://stdin.
	Stdin io.Reader
	// HTTP makes every HTTP request; nil is a client over
	// http.DefaultTransport.
	HTTP *http.Client
	// TempDir is where the context is unpacked; empty is the OS's.
	TempDir string
	// Log receives progress lines and warnings; nil discards them.
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Transport: http.DefaultTransport}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Kind is a kind of remote context.
type Kind string

// Kinds of context.
const (
	KindLocal Kind = "dir"
	KindS3    Kind = "s3"
	KindGCS   Kind = "gs"
	KindAzure Kind = "azure-blob"
	KindHTTPS Kind = "https"
	KindTar   Kind = "tar"
	KindGit   Kind = "git"
)

// Source is a parsed context.
type Source struct {
	Kind Kind
	// Raw is the context as given.
	Raw string
	// Location is what follows the scheme (a path for dir:// and tar://).
	Location string
}

// azureBlobSuffixes are the Azure clouds' blob hosts (kaniko's list).
var azureBlobSuffixes = []string{".blob.core.windows.net", ".blob.core.chinacloudapi.cn", ".blob.core.cloudapi.de", ".blob.core.usgovcloudapi.net"}

// Parse reads a context. A context without a scheme is a local directory;
// an http:// URL is an Azure blob only under the blob endpoint of
// AZURE_STORAGE_CONNECTION_STRING (an emulator such as Azurite), else it is
// refused.
func Parse(spec string, getenv func(string) string) (Source, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return Source{Kind: KindLocal, Raw: spec, Location: spec}, nil
	}
	src := Source{Raw: spec, Location: rest}
	switch strings.ToLower(scheme) {
	case "dir":
		src.Kind = KindLocal
	case "s3":
		src.Kind = KindS3
	case "gs":
		src.Kind = KindGCS
	case "tar":
		src.Kind = KindTar
	case "git":
		src.Kind = KindGit
	case "https", "http":
		host, _, _ := strings.Cut(rest, "/")
		host = strings.ToLower(host)
		switch {
		case underConnectionEndpoint(spec, getenv):
			src.Kind = KindAzure
		case strings.EqualFold(scheme, "http"):
			return Source{}, fmt.Errorf("context %q: plain http is refused: use https://", redact.URL(spec))
		default:
			src.Kind = KindHTTPS
			for _, s := range azureBlobSuffixes {
				if strings.HasSuffix(host, s) {
					src.Kind = KindAzure
				}
			}
		}
	default:
		return Source{}, fmt.Errorf("context %q: unknown prefix %s://: use a directory, dir://, tar://, s3://, gs://, https:// (Azure Blob Storage or another server) or git://", redact.URL(spec), scheme)
	}
	if src.Kind != KindLocal && src.Kind != KindTar && strings.TrimSpace(rest) == "" {
		return Source{}, fmt.Errorf("context %q names nothing after %s://", spec, scheme)
	}
	return src, nil
}

// IsRemote reports whether a context is fetched rather than read in place.
func IsRemote(spec string) bool {
	scheme, _, ok := strings.Cut(spec, "://")
	return ok && !strings.EqualFold(scheme, "dir")
}

// Context is a fetched context on disk.
type Context struct {
	// Dir is the unpacked context.
	Dir string
	// Bytes is its unpacked size, Files how many entries it has.
	Bytes int64
	Files int
	root  string
}

// Close removes the unpacked context.
func (c *Context) Close() error {
	if c == nil || c.root == "" {
		return nil
	}
	return os.RemoveAll(c.root)
}

// Fetch fetches a remote context and unpacks it into a new directory under
// o.TempDir; the caller closes the Context when the build is done. A local
// context is an error: the caller reads it in place.
func Fetch(ctx context.Context, spec string, o Options) (*Context, error) {
	o.defaults()
	src, err := Parse(spec, o.Getenv)
	if err != nil {
		return nil, err
	}
	if src.Kind == KindLocal {
		return nil, fmt.Errorf("context %q is a local directory: nothing to fetch", spec)
	}
	root, err := os.MkdirTemp(o.TempDir, "hoist-context-")
	if err != nil {
		return nil, fmt.Errorf("fetching the context: %w", err)
	}
	c := &Context{Dir: filepath.Join(root, "context"), root: root}
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("fetching the context: %w", err)
	}
	shown := redact.URL(spec)
	o.Log.Info("fetching the build context", "context", shown)
	switch src.Kind {
	case KindGit:
		err = fetchGit(ctx, src, c, o)
	default:
		var body io.ReadCloser
		body, err = openTarball(ctx, src, o)
		if err == nil {
			err = unpack(ctx, body, c, o)
			if cerr := body.Close(); err == nil && cerr != nil && !errors.Is(cerr, errDone) {
				err = cerr
			}
		}
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("fetching the context %s: %w", shown, err)
	}
	o.Log.Info("build context unpacked", "context", shown, "files", c.Files, "bytes", c.Bytes)
	return c, nil
}

// errDone is returned by a body closed after the whole tarball was read.
var errDone = errors.New("done")

// openTarball opens the stream of a tarball context.
func openTarball(ctx context.Context, src Source, o Options) (io.ReadCloser, error) {
	switch src.Kind {
	case KindTar:
		if src.Location == "stdin" {
			if o.Stdin == nil {
				return nil, errors.New("tar://stdin: no standard input")
			}
			return io.NopCloser(o.Stdin), nil
		}
		f, err := os.Open(src.Location)
		if err != nil {
			return nil, fmt.Errorf("opening the tarball: %w", err)
		}
		return f, nil
	case KindS3:
		return openS3(ctx, src, o)
	case KindGCS:
		return openGCS(ctx, src, o)
	case KindAzure:
		return openAzureBlob(ctx, src, o)
	case KindHTTPS:
		return openHTTPS(ctx, src, o)
	}
	return nil, fmt.Errorf("%s contexts are not tarballs", src.Kind)
}

// ErrTooLarge is returned when a context passes the size limit.
var ErrTooLarge = errors.New("the context is larger than context-max-size")

// capped reads at most max bytes, then fails with ErrTooLarge.
type capped struct {
	r    io.Reader
	left int64
	max  int64
	what string
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a stream of exactly max bytes from a longer one.
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w (%d bytes %s): raise context-max-size or make the context smaller (a .dockerignore does not apply to a tarball: leave files out of it)", ErrTooLarge, c.max, c.what)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// unpack decompresses (gzip, zstd, or none, told from the first bytes) and
// extracts a tarball into c.Dir, within the size limit.
func unpack(ctx context.Context, body io.Reader, c *Context, o Options) error {
	br := bufio.NewReaderSize(&capped{r: body, left: o.MaxSize, max: o.MaxSize, what: "compressed"}, 1<<16)
	magic, _ := br.Peek(4)
	var tarStream io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("reading the gzip stream: %w", err)
		}
		defer zr.Close()
		tarStream = zr
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return fmt.Errorf("reading the zstd stream: %w", err)
		}
		defer zr.Close()
		tarStream = zr
	case len(magic) == 0:
		return errors.New("the tarball is empty")
	}
	st, err := extract.Apply(ctx, c.Dir, &capped{r: tarStream, left: o.MaxSize, max: o.MaxSize, what: "unpacked"}, extract.Options{
		Log: o.Log, NoOwnership: true, Archive: true,
	})
	c.Files, c.Bytes = st.Entries, st.Bytes
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return err
		}
		return fmt.Errorf("unpacking (a .tar.gz, .tar.zst or .tar of the context is expected): %w", err)
	}
	if st.Entries == 0 {
		return errors.New("the tarball holds no file")
	}
	return nil
}

// Resolve returns the directory to build from — the context, or
// subPath inside it — and the Dockerfile: file when it is absolute, else
// file inside that directory (default Dockerfile). Neither may leave the
// context: symbolic links are followed as if the context were the root.
func Resolve(contextDir, subPath, file string) (dir, dockerfile string, err error) {
	dir = contextDir
	if subPath != "" {
		if dir, err = securejoin.SecureJoin(contextDir, subPath); err != nil {
			return "", "", fmt.Errorf("context-sub-path %q: %w", subPath, err)
		}
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() {
			return "", "", fmt.Errorf("context-sub-path %q is not a directory of the context", subPath)
		}
	}
	switch {
	case file == "":
		dockerfile = filepath.Join(dir, "Dockerfile")
	case filepath.IsAbs(file):
		dockerfile = file
	default:
		if dockerfile, err = securejoin.SecureJoin(dir, file); err != nil {
			return "", "", fmt.Errorf("file %q: %w", file, err)
		}
	}
	return dir, dockerfile, nil
}
