package layer

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// maxArchive bounds what ADD unpacks into memory.
const maxArchive = 1 << 30

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

// Fetch downloads an ADD URL and checks --checksum (sha256:hex). It
// returns the file's name as BuildKit gives it (the URL's last path
// element, else __unnamed__), its content and its time (Last-Modified).
func Fetch(ctx context.Context, client *http.Client, rawURL, checksum string) (string, []byte, time.Time, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("ADD %s: %w", u.Redacted(), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("ADD %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, time.Time{}, fmt.Errorf("ADD %s: the server answered %s", u.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxArchive+1))
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("ADD %s: %w", u.Redacted(), err)
	}
	if len(data) > maxArchive {
		return "", nil, time.Time{}, fmt.Errorf("ADD %s: more than %d bytes", u.Redacted(), maxArchive)
	}
	if checksum != "" {
		algo, want, ok := strings.Cut(checksum, ":")
		if !ok || algo != "sha256" {
			return "", nil, time.Time{}, fmt.Errorf("ADD --checksum=%s: use sha256:<hex>", checksum)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != strings.ToLower(want) {
			return "", nil, time.Time{}, fmt.Errorf("ADD %s: checksum mismatch: the download is sha256:%s, --checksum expects %s", u.Redacted(), got, checksum)
		}
	}
	mtime := time.Time{}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			mtime = t
		}
	}
	name := "__unnamed__"
	if base := path.Base(u.Path); base != "." && base != "/" && base != "" {
		name = base
	}
	return name, data, mtime, nil
}
