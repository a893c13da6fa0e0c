package gitops

import (
	"bufio"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/klauspost/compress/zlib"
)

// writePack writes the objects to w as a version 2 packfile of whole
// objects (no deltas; git-format-pack(5)): a header, each object's type and
// size followed by its zlib-compressed content, and the SHA-1 of it all.
//
// go-git's encoder resets a standard-library deflate compressor per object,
// which clears its hash tables each time: for the thousands of small blobs
// and trees of a bump across a large repository that cost more CPU than
// the edit itself. klauspost/compress resets without clearing.
func writePack(w io.Writer, s storer.EncodedObjectStorer, hashes []plumbing.Hash) error {
	sum := sha1.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10)
	var hdr [12]byte
	copy(hdr[:4], "PACK")
	binary.BigEndian.PutUint32(hdr[4:8], 2)
	binary.BigEndian.PutUint32(hdr[8:12], uint32(len(hashes)))
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	zw, err := zlib.NewWriterLevel(bw, zlib.BestSpeed)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		obj, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return fmt.Errorf("object %s: %w", h, err)
		}
		t := obj.Type()
		if t != plumbing.CommitObject && t != plumbing.TreeObject && t != plumbing.BlobObject && t != plumbing.TagObject {
			return fmt.Errorf("object %s: cannot pack a %s", h, t)
		}
		if _, err := bw.Write(objectHeader(t, obj.Size())); err != nil {
			return err
		}
		r, err := obj.Reader()
		if err != nil {
			return fmt.Errorf("object %s: %w", h, err)
		}
		zw.Reset(bw)
		_, err = io.Copy(zw, r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("object %s: %w", h, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(sum.Sum(nil))
	return err
}

// objectHeader is a pack entry's header: the type in bits 4-6 of the first
// byte, the size in its low 4 bits and then 7 bits a byte, little-endian,
// the high bit saying more follow.
func objectHeader(t plumbing.ObjectType, size int64) []byte {
	b := []byte{byte(t)<<4 | byte(size&0x0f)}
	size >>= 4
	for size > 0 {
		b[len(b)-1] |= 0x80
		b = append(b, byte(size&0x7f))
		size >>= 7
	}
	return b
}
