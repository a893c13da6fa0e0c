package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// maxArchive bounds what ADD unpacks into memory.
const maxArchive = 1 << 30

// IsArchive sniffs a local file: tar, gzip, bzip2 or zstd compressed tar.
func IsArchive(host string) bool {
	f, err := os.Open(host)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := decompressed(bufio.NewReader(f))
	if err != nil {
		return false
	}
	_, err = tar.NewReader(r).Next()
	return err == nil
}

func decompressed(br *bufio.Reader) (io.Reader, error) {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return pgzip.NewReader(br)
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return br, nil
}

// Extract lists the entries of a local archive unpacked into dest (ADD of
// a tar). Names that would leave dest (../, absolute) are refused; links
// are kept as they are (they are only written, never followed). Ownership
// and modes come from the archive unless o overrides them.
func (c *Context) Extract(src, dest string, o CopyOptions) ([]Entry, error) {
	rel, err := cleanSource(src)
	if err != nil {
		return nil, err
	}
	host, err := c.resolve(src, rel)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", src, err)
	}
	defer f.Close()
	r, err := decompressed(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", src, err)
	}
	set := newEntrySet()
	base := strings.TrimPrefix(dest, "/")
	tr := tar.NewReader(r)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ADD %s: reading the archive: %w", src, err)
		}
		name := path.Clean("/" + hdr.Name)
		for _, part := range strings.Split(hdr.Name, "/") {
			if part == ".." {
				return nil, fmt.Errorf("ADD %s: archive entry %q leaves the destination with ../; refusing the archive", src, hdr.Name)
			}
		}
		e := Entry{Name: path.Join(base, name), UID: hdr.Uid, GID: hdr.Gid, ModTime: hdr.ModTime}
		perm := PermFromTar(hdr.Mode)
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.Mode = fs.ModeDir | perm
		case tar.TypeSymlink:
			e.Mode = fs.ModeSymlink | 0o777
			e.Linkname = hdr.Linkname
		case tar.TypeReg:
			total += hdr.Size
			if total > maxArchive {
				return nil, fmt.Errorf("ADD %s: the archive unpacks to more than %d bytes; COPY it and unpack it in a later step instead", src, maxArchive)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("ADD %s: reading %s: %w", src, hdr.Name, err)
			}
			e.Mode = perm
			e.Size = int64(len(data))
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		default:
			// Hard links, devices and fifos: not written by this version.
			return nil, fmt.Errorf("ADD %s: archive entry %q is a %s, which build-push does not unpack yet", src, hdr.Name, typeName(hdr.Typeflag))
		}
		if o.Owner != nil {
			e.UID, e.GID = o.Owner.UID, o.Owner.GID
		}
		if o.Chmod != nil && e.Mode&fs.ModeSymlink == 0 {
			e.Mode = e.Mode&fs.ModeDir | o.Chmod(e.Mode&^fs.ModeDir, e.Mode.IsDir())
		}
		set.add(e)
	}
	set.parents(base, true, o)
	return set.sorted(), nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device node"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("tar type %q", t)
}

// Download fetches an ADD URL and checks --checksum (sha256:hex). The file
// is named by dest, or by the URL's last path element when dest is a
// directory; its mode is 0600 and its time the Last-Modified header, as
// Docker does.
func Download(ctx context.Context, client *http.Client, rawURL, checksum, dest string, destDir bool, o CopyOptions) ([]Entry, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", u.Redacted(), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ADD %s: the server answered %s", u.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxArchive+1))
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", u.Redacted(), err)
	}
	if len(data) > maxArchive {
		return nil, fmt.Errorf("ADD %s: more than %d bytes", u.Redacted(), maxArchive)
	}
	if checksum != "" {
		algo, want, ok := strings.Cut(checksum, ":")
		if !ok || algo != "sha256" {
			return nil, fmt.Errorf("ADD --checksum=%s: use sha256:<hex>", checksum)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != strings.ToLower(want) {
			return nil, fmt.Errorf("ADD %s: checksum mismatch: the download is sha256:%s, --checksum expects %s", u.Redacted(), got, checksum)
		}
	}
	target := strings.TrimPrefix(dest, "/")
	if destDir {
		base := path.Base(u.Path)
		if base == "/" || base == "." || base == "" {
			return nil, fmt.Errorf("ADD %s: cannot name the file from the URL; give a file destination", u.Redacted())
		}
		target = path.Join(target, base)
	}
	mtime := time.Time{}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			mtime = t
		}
	}
	perm := fs.FileMode(0o600)
	if o.Chmod != nil {
		perm = o.Chmod(perm, false)
	}
	e := Entry{Name: target, Mode: perm, Size: int64(len(data)), ModTime: mtime,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	if o.Owner != nil {
		e.UID, e.GID = o.Owner.UID, o.Owner.GID
	}
	set := newEntrySet()
	set.add(e)
	set.parents(target, false, o)
	return set.sorted(), nil
}

// HostPath resolves a context-relative source to its path on the host,
// refusing one that leaves the context.
func (c *Context) HostPath(src string) (string, error) {
	rel, err := cleanSource(src)
	if err != nil {
		return "", err
	}
	return c.resolve(src, rel)
}
