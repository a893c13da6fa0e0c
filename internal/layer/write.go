package layer

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// WriteTar writes entries (in the given order) as a tar stream. Times are
// taken from the entries; zero times become the Unix epoch. No user or
// group names, access or change times are written.
func WriteTar(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.Name,
			Mode:    tarMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: e.ModTime,
			Format:  tar.FormatPAX,
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = time.Unix(0, 0)
		}
		hdr.ModTime = hdr.ModTime.UTC().Truncate(time.Second)
		switch {
		case e.Hardlink != "":
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = e.Hardlink
		case e.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.Linkname
		case e.Mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.Mode&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		case e.Mode&fs.ModeDevice != 0:
			hdr.Typeflag = tar.TypeBlock
			if e.Mode&fs.ModeCharDevice != 0 {
				hdr.Typeflag = tar.TypeChar
			}
			hdr.Devmajor, hdr.Devminor = e.Devmajor, e.Devminor
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.Size
		}
		if len(e.Xattrs) > 0 && e.Hardlink == "" {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", e.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg && e.Open != nil {
			rc, err := e.Open()
			if err != nil {
				return fmt.Errorf("reading %s: %w", e.Name, err)
			}
			n, err := io.Copy(tw, rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", e.Name, err)
			}
			if n != e.Size {
				return fmt.Errorf("%s changed size while the layer was written (%d, then %d bytes): do not modify the context during a build", e.Name, e.Size, n)
			}
		}
	}
	return tw.Close()
}

// PermFromTar is the inverse of tarMode: a tar header's mode bits as the
// permission and setuid/setgid/sticky bits of an fs.FileMode.
func PermFromTar(mode int64) fs.FileMode {
	perm := fs.FileMode(mode).Perm()
	if mode&0o4000 != 0 {
		perm |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		perm |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		perm |= fs.ModeSticky
	}
	return perm
}

func tarMode(m fs.FileMode) int64 {
	out := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// Compression of layer blobs.
type Compression string

const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// Format is the layer media type family.
type Format string

const (
	OCI    Format = "oci"
	Docker Format = "docker"
)

// MediaType of a layer with this compression and format.
func MediaType(c Compression, f Format) types.MediaType {
	switch {
	case c == Zstd:
		return types.OCILayerZStd
	case f == Docker:
		return types.DockerLayer
	default:
		return types.OCILayer
	}
}

// Layer is a compressed layer blob held in a file.
type Layer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
	comp      Compression
}

var _ v1.Layer = (*Layer)(nil)

// Build writes entries to a compressed blob in dir (the OS temp dir when
// empty). Remove the file with Close when the layer is no longer needed.
func Build(entries []Entry, comp Compression, format Format, dir string) (*Layer, error) {
	return BuildFrom(func(w io.Writer) error { return WriteTar(w, entries) }, comp, format, dir)
}

// BuildFrom is Build for a tar stream that write produces (a RUN's
// snapshot): it is compressed and hashed as it is written, in one pass.
func BuildFrom(write func(io.Writer) error, comp Compression, format Format, dir string) (*Layer, error) {
	f, err := os.CreateTemp(dir, "hoist-layer-*")
	if err != nil {
		return nil, fmt.Errorf("creating a layer file: %w", err)
	}
	l := &Layer{path: f.Name(), mediaType: MediaType(comp, format), comp: comp}
	fail := func(err error) (*Layer, error) {
		f.Close()
		os.Remove(l.path)
		return nil, err
	}
	blobHash := sha256.New()
	counter := &countWriter{w: io.MultiWriter(f, blobHash)}
	var zw io.WriteCloser
	switch comp {
	case Zstd:
		zw, err = zstd.NewWriter(counter, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	default:
		var gz *pgzip.Writer
		gz, err = pgzip.NewWriterLevel(counter, pgzip.DefaultCompression)
		if err == nil {
			err = gz.SetConcurrency(1<<20, runtime.GOMAXPROCS(0)*2)
			// No name, no time: the gzip header must not depend on the host.
			gz.ModTime = time.Time{}
		}
		zw = gz
	}
	if err != nil {
		return fail(fmt.Errorf("starting %s compression: %w", comp, err))
	}
	diffHash := sha256.New()
	if err := write(io.MultiWriter(zw, diffHash)); err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(fmt.Errorf("compressing: %w", err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("writing the layer file: %w", err))
	}
	l.digest = toHash(blobHash)
	l.diffID = toHash(diffHash)
	l.size = counter.n
	return l, nil
}

// DiffIDOf returns the digest of the uncompressed tar of entries without
// compressing: the content digest a cache key uses.
func DiffIDOf(entries []Entry) (v1.Hash, error) {
	h := sha256.New()
	if err := WriteTar(h, entries); err != nil {
		return v1.Hash{}, err
	}
	return toHash(h), nil
}

func toHash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Close removes the layer's file.
func (l *Layer) Close() error { return os.Remove(l.path) }

func (l *Layer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *Layer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *Layer) Size() (int64, error)                 { return l.size, nil }
func (l *Layer) MediaType() (types.MediaType, error)  { return l.mediaType, nil }
func (l *Layer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *Layer) Uncompressed() (io.ReadCloser, error) { return decompress(l.path, l.comp) }

func decompress(p string, comp Compression) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if comp == Zstd {
		d, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &readCloser{Reader: d, close: func() error { d.Close(); return f.Close() }}, nil
	}
	g, err := pgzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readCloser{Reader: g, close: func() error { g.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
