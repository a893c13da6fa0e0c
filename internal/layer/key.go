package layer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// ContentKey returns a digest of what entries hold — each entry's name,
// type and mode, owner, size, link target, device numbers, extended
// attributes and content — and not of their times: the identity of a COPY's
// sources or a bind mount in a cache key (BuildKit's cache keys leave times
// out too). Regular files are read in parallel, which is most of the cost
// of a warm build's COPY of a large context; it is not the diff ID of any
// layer.
func ContentKey(entries []Entry) (v1.Hash, error) {
	sums := make([][sha256.Size]byte, len(entries))
	g := errgroup.Group{}
	g.SetLimit(max(2, runtime.GOMAXPROCS(0)*2)) // reads wait on the disk as much as on a CPU
	for i, e := range entries {
		if !e.Mode.IsRegular() || e.Hardlink != "" || e.Open == nil {
			continue
		}
		g.Go(func() error {
			rc, err := e.Open()
			if err != nil {
				return fmt.Errorf("reading %s: %w", e.Name, err)
			}
			defer rc.Close()
			h := sha256.New()
			n, err := io.Copy(h, rc)
			if err != nil {
				return fmt.Errorf("reading %s: %w", e.Name, err)
			}
			if n != e.Size {
				return fmt.Errorf("reading %s: %d bytes where %d were listed (the file changed during the build)", e.Name, n, e.Size)
			}
			h.Sum(sums[i][:0])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return v1.Hash{}, err
	}
	h := sha256.New()
	io.WriteString(h, "hoist content key v1\x00")
	for i, e := range entries {
		field(h, e.Name)
		num(h, uint64(e.Mode&(fs.ModeType|fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
		num(h, uint64(e.UID))
		num(h, uint64(e.GID))
		num(h, uint64(e.Size))
		field(h, e.Linkname)
		field(h, e.Hardlink)
		num(h, uint64(e.Devmajor))
		num(h, uint64(e.Devminor))
		names := make([]string, 0, len(e.Xattrs))
		for k := range e.Xattrs {
			names = append(names, k)
		}
		sort.Strings(names)
		num(h, uint64(len(names)))
		for _, k := range names {
			field(h, k)
			field(h, e.Xattrs[k])
		}
		h.Write(sums[i][:])
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// field writes s with its length first, so no two lists of fields read alike.
func field(h hash.Hash, s string) {
	num(h, uint64(len(s)))
	io.WriteString(h, s)
}

func num(h hash.Hash, n uint64) {
	var b [binary.MaxVarintLen64]byte
	h.Write(b[:binary.PutUvarint(b[:], n)])
}
