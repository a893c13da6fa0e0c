// Package extract unpacks image layers into a root directory, confined to
// it: no tar entry, symlink, hardlink or whiteout can create, change or
// remove anything outside the root.
//
// Every entry's parent directory is resolved inside the root (symlinks are
// followed as if the root were "/", the way a container would see them),
// then opened through an os.Root, and the entry's last component is
// created relative to that directory's descriptor without following it.
// Whiteouts (.wh.<name>) and opaque directories (.wh..wh..opq) are applied
// as the OCI image layer specification describes. Ownership, modes, times
// and extended attributes are kept when the process is permitted to set
// them; device nodes that cannot be created are skipped with a warning.
package extract

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	paxXattr       = "SCHILY.xattr."
)

// Options tune an extraction.
type Options struct {
	// Log receives warnings: skipped device nodes, ownership or extended
	// attributes the process may not set. Nil discards them.
	Log *slog.Logger
	// NoOwnership skips chown (e.g. rootless extraction for inspection).
	// Without it, a refused chown is a warning, reported once.
	NoOwnership bool
	// Archive unpacks a plain archive (a build context), not an image
	// layer: names starting with .wh. are ordinary files, and device nodes
	// and FIFOs are skipped with a warning.
	Archive bool
	// MaxBytes bounds what the layers may write: extraction stops with
	// ErrTooLarge, before writing the file that would pass it, once the
	// regular files (each rounded up to whole 4 KiB pages, as a tmpfs
	// holds them) would exceed it. 0: no bound. Layers counts across
	// all its layers.
	MaxBytes int64

	// spent is what earlier layers of Layers wrote, against MaxBytes.
	spent int64
	// mknod replaces unix.Mknodat in tests (to refuse it).
	mknod func(dfd int, name string, mode uint32, dev int) error
}

// Stats count what an extraction did.
type Stats struct {
	Entries   int   // tar entries read
	Bytes     int64 // regular file bytes written
	Whiteouts int   // whiteout and opaque markers applied
	Skipped   int   // entries skipped (device nodes not permitted, sockets)
	// Footprint is the regular files written, each rounded up to whole
	// 4 KiB pages: what they take in a tmpfs (MaxBytes bounds it).
	Footprint int64
}

// ErrTooLarge is an extraction stopped by Options.MaxBytes.
var ErrTooLarge = errors.New("the layers unpack to more than the limit")

// Layers applies each layer's uncompressed tar, in order, to root.
func Layers(ctx context.Context, root string, layers []v1.Layer, o Options) (Stats, error) {
	var total Stats
	for i, l := range layers {
		rc, err := uncompressed(l)
		if err != nil {
			return total, fmt.Errorf("layer %d: %w", i+1, err)
		}
		lo := o
		lo.spent = o.spent + total.Footprint
		st, err := Apply(ctx, root, rc, lo)
		rc.Close()
		total.Entries += st.Entries
		total.Bytes += st.Bytes
		total.Whiteouts += st.Whiteouts
		total.Skipped += st.Skipped
		total.Footprint += st.Footprint
		if err != nil {
			return total, fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return total, nil
}

// uncompressed opens a layer's tar stream. A gzip layer is decompressed
// by pgzip, which inflates blocks ahead in goroutines of its own while
// the extractor writes files: on a 2-core runner that hides most of the
// decompression behind the file system's work.
func uncompressed(l v1.Layer) (io.ReadCloser, error) {
	mt, err := l.MediaType()
	if err != nil || (mt != types.DockerLayer && mt != types.OCILayer && mt != types.DockerForeignLayer && mt != types.OCIRestrictedLayer) {
		return l.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := pgzip.NewReaderN(rc, 1<<20, 8)
	if err != nil {
		rc.Close()
		return l.Uncompressed()
	}
	return &gzipLayer{Reader: zr, raw: rc}, nil
}

type gzipLayer struct {
	*pgzip.Reader
	raw io.Closer
}

func (g *gzipLayer) Close() error {
	err := g.Reader.Close()
	if cerr := g.raw.Close(); err == nil {
		err = cerr
	}
	return err
}

type extractor struct {
	ctx     context.Context
	rootDir string // absolute, symlinks resolved
	root    *os.Root
	o       Options
	log     *slog.Logger
	stats   Stats
	// written holds the paths this layer wrote and their ancestors
	// (true: written; false: only an ancestor of something written), so
	// an opaque marker keeps them. Keyed by the names as the layer wrote
	// them.
	written map[string]bool
	dirs    []dirTimes // directory times, set when the layer is done
	warned  map[string]bool
	// dirs opened by parent, by their unresolved path: a layer's entries
	// come directory by directory, so each is resolved and opened once.
	// Any entry that could change how a path resolves (a symlink, a
	// removal, a replacement) empties it.
	open map[string]*os.File

	// Regular files of up to maxAsync bytes are created and written by
	// writers, in parallel with the reading of the layer (file creation
	// is most of an unpacking's cost). Entries that depend on what is
	// already there (links, removals, replacements) wait for them.
	jobs    chan fileJob
	pending sync.WaitGroup
	mu      sync.Mutex // warned, and the first writer error
	failed  error
	budget  chan struct{} // one token per KiB in flight
	writers sync.WaitGroup
	flight  map[string]bool // names handed to writers since the last wait
	retired []*os.File      // directory descriptors to close at the next wait
	// fresh: the root was empty when the layer began, so a name this
	// layer has not written (or made as a parent) does not exist yet.
	fresh bool
}

// track remembers a name handed to the writers; inFlight tells whether
// a later entry names it again (then it waits for the writers).
func (x *extractor) track(name string) {
	if x.flight == nil {
		x.flight = map[string]bool{}
	}
	x.flight[name] = true
}

func (x *extractor) inFlight(name string) bool { return x.flight[name] }

const maxAsync = 1 << 20

type fileJob struct {
	dfd  int // the parent directory (open until the next wait)
	last string
	rel  string
	hdr  *tar.Header
	data []byte
	mode uint32
}

// startWriters starts the file writers.
func (x *extractor) startWriters(n int) {
	x.jobs = make(chan fileJob, 64)
	x.budget = make(chan struct{}, 32<<10) // 32 MiB in flight
	for range n {
		x.writers.Add(1)
		go func() {
			defer x.writers.Done()
			for j := range x.jobs {
				err := x.writeFile(j)
				for range kib(len(j.data)) {
					<-x.budget
				}
				if err != nil {
					x.mu.Lock()
					if x.failed == nil {
						x.failed = fmt.Errorf("%s: %w", j.hdr.Name, err)
					}
					x.mu.Unlock()
				}
				x.pending.Done()
			}
		}()
	}
}

func kib(n int) int { return n>>10 + 1 }

// wait lets every file handed to the writers land; it returns the first
// error one of them met.
func (x *extractor) wait() error {
	x.pending.Wait()
	x.flight = nil
	for _, f := range x.retired {
		f.Close()
	}
	x.retired = nil
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.failed
}

// stopWriters ends the writers (after wait).
func (x *extractor) stopWriters() {
	if x.jobs != nil {
		close(x.jobs)
		x.writers.Wait()
		x.jobs = nil
	}
	for _, f := range x.retired {
		f.Close()
	}
	x.retired = nil
}

func (x *extractor) writeFile(j fileJob) error {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(j.dfd, j.last, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		// A fresh root's name met again through a symlinked parent
		// (lib/x and usr/lib/x): the later entry replaces the file.
		var st unix.Stat_t
		if serr := unix.Fstatat(j.dfd, j.last, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if uerr := unix.Unlinkat(j.dfd, j.last, 0); uerr == nil {
				fd, err = unix.Openat(j.dfd, j.last, flags, 0o600)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	for data := j.data; len(data) > 0; {
		n, werr := unix.Write(fd, data)
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			unix.Close(fd)
			return fmt.Errorf("write: %w", werr)
		}
		data = data[n:]
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return x.metadata(j.hdr, j.dfd, j.last, j.rel, j.mode)
}

type dirTimes struct {
	name         string
	mode         uint32
	atime, mtime time.Time
}

// Apply applies one uncompressed layer tar to root, which must exist.
func Apply(ctx context.Context, root string, r io.Reader, o Options) (Stats, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Stats{}, fmt.Errorf("root %s: %w", root, err)
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return Stats{}, fmt.Errorf("root %s: %w", root, err)
	}
	rt, err := os.OpenRoot(abs)
	if err != nil {
		return Stats{}, fmt.Errorf("root %s: %w", root, err)
	}
	defer rt.Close()
	x := &extractor{ctx: ctx, rootDir: abs, root: rt, o: o, log: o.Log,
		written: map[string]bool{}, warned: map[string]bool{}}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	if d, err := os.Open(abs); err == nil {
		names, _ := d.Readdirnames(1)
		x.fresh = len(names) == 0
		d.Close()
	}
	defer x.forget()
	x.startWriters(max(2, runtime.GOMAXPROCS(0)))
	defer x.stopWriters()
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<16))
	for {
		if err := ctx.Err(); err != nil {
			return x.stats, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.stats, fmt.Errorf("reading the layer: %w", err)
		}
		x.stats.Entries++
		if err := x.entry(hdr, tr); err != nil {
			_ = x.wait()
			return x.stats, fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	if err := x.wait(); err != nil {
		return x.stats, err
	}
	// Deepest first, so setting a directory's times is not undone by a
	// child's.
	sort.SliceStable(x.dirs, func(i, j int) bool { return len(x.dirs[i].name) > len(x.dirs[j].name) })
	for _, d := range x.dirs {
		if err := x.finishDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return x.stats, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return x.stats, nil
}

// clean turns a tar name into a root-relative slash path ("" is the root).
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// resolveDir resolves a root-relative directory path inside the root,
// following symlinks as the container would, and returns it relative to
// the root ("." for the root).
func (x *extractor) resolveDir(dir string) (string, error) {
	if dir == "" || dir == "." {
		return ".", nil
	}
	p, err := securejoin.SecureJoin(x.rootDir, dir)
	if err != nil {
		return "", fmt.Errorf("resolving %s inside the root: %w", dir, err)
	}
	rel, err := filepath.Rel(x.rootDir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("resolving %s: it leaves the root", dir)
	}
	return filepath.ToSlash(rel), nil
}

// parent opens the (resolved) parent directory of a clean path, creating
// missing directories, and returns its descriptor and the last component.
func (x *extractor) parent(name string, create bool) (*os.File, string, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if c, ok := x.open[dir]; ok {
		fd, err := unix.Dup(int(c.Fd()))
		if err != nil {
			return nil, "", "", fmt.Errorf("opening %s: %w", dir, err)
		}
		return os.NewFile(uintptr(fd), c.Name()), base, path.Join(c.Name(), base), nil
	}
	rdir, err := x.resolveDir(dir)
	if err != nil {
		return nil, "", "", err
	}
	if create && rdir != "." {
		if err := x.root.MkdirAll(rdir, 0o755); err != nil {
			return nil, "", "", fmt.Errorf("creating %s: %w", rdir, err)
		}
	}
	f, err := x.root.OpenFile(rdir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, "", "", fmt.Errorf("opening %s: %w", rdir, err)
	}
	if fd, err := unix.Dup(int(f.Fd())); err == nil {
		if len(x.open) >= 256 {
			x.forget()
		}
		if x.open == nil {
			x.open = map[string]*os.File{}
		}
		x.open[dir] = os.NewFile(uintptr(fd), rdir)
	}
	return f, base, path.Join(rdir, base), nil
}

// forget closes the directories parent keeps open: the tree's shape
// may have changed.
func (x *extractor) forget() {
	for _, f := range x.open {
		// Writers may still use it: closed at the next wait.
		x.retired = append(x.retired, f)
	}
	x.open = nil
}

// settle waits for the writers (which closes the directories they used)
// and resolves name's parent again.
func (x *extractor) settle(name string) (int, string, string, error) {
	if err := x.wait(); err != nil {
		return 0, "", "", err
	}
	return x.parentFd(name)
}

// parentFd is parent without a descriptor of its own: the directory's
// descriptor stays open (in the cache, or retired) until the writers
// have finished with it; the caller must not close it.
func (x *extractor) parentFd(name string) (int, string, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if c, ok := x.open[dir]; ok {
		return int(c.Fd()), base, path.Join(c.Name(), base), nil
	}
	f, base, rel, err := x.parent(name, true)
	if err != nil {
		return 0, "", "", err
	}
	x.retired = append(x.retired, f)
	return int(f.Fd()), base, rel, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name := clean(hdr.Name)
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case name == "":
		return nil // the root itself: keep the host-chosen root
	case x.o.Archive:
		// A build context's .wh.* files are files, not whiteouts.
	case base == opaqueMarker:
		x.stats.Whiteouts++
		if err := x.wait(); err != nil {
			return err
		}
		x.forget()
		return x.opaque(dir)
	case strings.HasPrefix(base, whiteoutPrefix):
		x.stats.Whiteouts++
		if err := x.wait(); err != nil {
			return err
		}
		x.forget()
		gone := strings.TrimPrefix(base, whiteoutPrefix)
		if gone == "" || gone == "." || gone == ".." {
			return fmt.Errorf("invalid whiteout name %q", base)
		}
		return x.remove(path.Join(dir, gone))
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	dfd, last, rel, err := x.parentFd(name)
	if err != nil {
		return err
	}

	var existing unix.Stat_t
	_, seen := x.written[name]
	exists := false
	if !x.fresh || seen || hdr.Typeflag != tar.TypeReg {
		exists = unix.Fstatat(dfd, last, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	if exists || hdr.Typeflag == tar.TypeLink {
		// A replacement, or a link to a file a writer may still be
		// writing: everything before this entry lands first. (A file a
		// writer has not created yet is not seen here: the tar names it
		// twice only when it replaces it, and then it exists — unless a
		// writer is late, which this wait also covers.)
		if dfd, last, rel, err = x.settle(name); err != nil {
			return err
		}
		exists = unix.Fstatat(dfd, last, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil
	} else if x.inFlight(name) {
		if dfd, last, rel, err = x.settle(name); err != nil {
			return err
		}
		exists = unix.Fstatat(dfd, last, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	isDir := exists && existing.Mode&unix.S_IFMT == unix.S_IFDIR
	if hdr.Typeflag == tar.TypeSymlink || (exists && !(isDir && hdr.Typeflag == tar.TypeDir)) {
		x.forget()
	}
	if exists && !(isDir && hdr.Typeflag == tar.TypeDir) {
		if isDir {
			if err := x.root.RemoveAll(rel); err != nil {
				return fmt.Errorf("replacing directory: %w", err)
			}
		} else if err := unix.Unlinkat(dfd, last, 0); err != nil {
			return fmt.Errorf("replacing: %w", err)
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(dfd, last, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
	case tar.TypeReg, tar.TypeGNUSparse: // archive/tar reads the old TypeRegA as TypeReg
		pages := (max(hdr.Size, 0) + 4095) &^ 4095
		if written := x.o.spent + x.stats.Footprint; x.o.MaxBytes > 0 && written+pages > x.o.MaxBytes {
			return fmt.Errorf("%w of %d MiB (%d MiB written so far, this file has %d MiB)", ErrTooLarge, x.o.MaxBytes>>20, written>>20, hdr.Size>>20)
		}
		x.stats.Footprint += pages
		if hdr.Size <= maxAsync && hdr.Typeflag != tar.TypeGNUSparse {
			data := make([]byte, hdr.Size)
			if _, err := io.ReadFull(r, data); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			for range kib(len(data)) {
				x.budget <- struct{}{}
			}
			x.stats.Bytes += int64(len(data))
			x.markWritten(name)
			x.track(name)
			x.pending.Add(1)
			x.jobs <- fileJob{dfd: dfd, last: last, rel: rel, hdr: hdr, data: data, mode: mode}
			return nil
		}
		fd, err := unix.Openat(dfd, last, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		f := os.NewFile(uintptr(fd), rel)
		n, err := io.Copy(f, r)
		x.stats.Bytes += n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, dfd, last); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case tar.TypeLink:
		return x.hardlink(hdr, dfd, last, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if x.o.Archive {
			x.stats.Skipped++
			x.log.Warn("device node or FIFO skipped: an archive's are not unpacked", "path", "/"+name)
			return nil
		}
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		mknod := x.o.mknod
		if mknod == nil {
			mknod = unix.Mknodat
		}
		if err := mknod(dfd, last, kind|0o600, int(dev)); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				x.stats.Skipped++
				x.log.Warn("device node skipped: creating it is not permitted here", "path", "/"+name)
				return nil
			}
			return fmt.Errorf("mknod: %w", err)
		}
	default:
		x.stats.Skipped++
		x.log.Warn("tar entry type not supported, skipped", "path", "/"+name, "type", strconv.Itoa(int(hdr.Typeflag)))
		return nil
	}
	x.markWritten(name)
	return x.metadata(hdr, dfd, last, rel, mode)
}

func (x *extractor) markWritten(name string) {
	x.written[name] = true
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := x.written[d]; ok {
			break
		}
		x.written[d] = false
	}
}

// hardlink links name to hdr.Linkname; the target's parent is resolved
// inside the root and the target itself is not followed, so the link can
// only name a file of the root.
func (x *extractor) hardlink(hdr *tar.Header, dfd int, last, name string) error {
	target := clean(hdr.Linkname)
	if target == "" {
		return fmt.Errorf("hardlink to the root directory")
	}
	tf, tlast, _, err := x.parent(target, false)
	if err != nil {
		return fmt.Errorf("hardlink target %s: %w", hdr.Linkname, err)
	}
	defer tf.Close()
	if err := unix.Linkat(int(tf.Fd()), tlast, dfd, last, 0); err != nil {
		return fmt.Errorf("hardlink to %s: %w", hdr.Linkname, err)
	}
	x.markWritten(name)
	return nil
}

func (x *extractor) warnOnce(key, msg string, args ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.warned[key] {
		return
	}
	x.warned[key] = true
	x.log.Warn(msg, args...)
}

func (x *extractor) metadata(hdr *tar.Header, dfd int, last, rel string, mode uint32) error {
	if !x.o.NoOwnership {
		if err := unix.Fchownat(dfd, last, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("chown: %w", err)
			}
			x.warnOnce("chown", "file ownership not kept: chown is not permitted here", "path", "/"+rel, "error", err)
		}
	}
	// A directory's mode is set when the layer is done, so a read-only
	// directory can still receive its entries.
	if hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeDir {
		// After chown, which clears setuid/setgid.
		if err := unix.Fchmodat(dfd, last, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := x.xattrs(hdr, dfd, last, rel); err != nil {
		return err
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		x.dirs = append(x.dirs, dirTimes{name: rel, mode: mode, atime: atime, mtime: hdr.ModTime})
		return nil
	}
	return utimes(dfd, last, atime, hdr.ModTime)
}

func utimes(dfd int, last string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(dfd, last, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("times: %w", err)
	}
	return nil
}

func (x *extractor) finishDir(d dirTimes) error {
	pf, last, _, err := x.parent(d.name, false)
	if err != nil {
		return err
	}
	defer pf.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(pf.Fd()), last, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil // replaced or removed later in the layer
	}
	if err := unix.Fchmodat(int(pf.Fd()), last, d.mode, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return utimes(int(pf.Fd()), last, d.atime, d.mtime)
}

// xattrs sets the entry's extended attributes through /proc/self/fd, so the
// last component is not followed (lsetxattr) and the parent stays the
// descriptor opened inside the root.
func (x *extractor) xattrs(hdr *tar.Header, dfd int, last, rel string) error {
	var names []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	p := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + last
	for _, k := range names {
		attr := strings.TrimPrefix(k, paxXattr)
		if err := unix.Lsetxattr(p, attr, []byte(hdr.PAXRecords[k]), 0); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOENT) {
				x.warnOnce("xattr:"+attr, "extended attribute not kept: not permitted or not supported here", "path", "/"+rel, "xattr", attr, "error", err)
				continue
			}
			return fmt.Errorf("setting xattr %s: %w", attr, err)
		}
	}
	return nil
}

// remove applies a whiteout: name (resolved inside the root, last
// component not followed) and everything under it go.
func (x *extractor) remove(name string) error {
	pf, last, rel, err := x.parent(name, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer pf.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(pf.Fd()), last, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil // nothing to remove
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return x.root.RemoveAll(rel)
	}
	return unix.Unlinkat(int(pf.Fd()), last, 0)
}

// opaque removes what lower layers put under dir, keeping what this layer
// wrote there already.
func (x *extractor) opaque(dir string) error {
	rdir, err := x.resolveDir(dir)
	if err != nil {
		return err
	}
	// this layer may have written the directory under a name that
	// resolves elsewhere; the kept set is by the names written.
	return x.clearDir(rdir, dir)
}

func (x *extractor) clearDir(rdir, logical string) error {
	f, err := x.root.OpenFile(rdir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", rdir, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("listing %s: %w", rdir, err)
	}
	for _, n := range names {
		child := path.Join(logical, n)
		if _, ok := x.written[child]; !ok {
			if err := x.root.RemoveAll(path.Join(rdir, n)); err != nil {
				return fmt.Errorf("removing %s: %w", child, err)
			}
			continue
		}
		// Written by this layer (or above something written): a
		// directory still loses what lower layers had in it.
		fi, err := x.root.Lstat(path.Join(rdir, n))
		if err != nil {
			return fmt.Errorf("%s: %w", child, err)
		}
		if fi.IsDir() {
			if err := x.clearDir(path.Join(rdir, n), child); err != nil {
				return err
			}
		}
	}
	return nil
}
