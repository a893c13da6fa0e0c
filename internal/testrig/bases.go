package testrig

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// The base images' layout.
const (
	// BasePATH is the PATH of both base images (Docker's default).
	BasePATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// BusyboxBinary is the host's static busybox (Debian's busybox-static).
	BusyboxBinary = "/bin/busybox"
	// DebianSuite is the release DebianImage bootstraps.
	DebianSuite = "bookworm"

	busyboxPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
		"app:x:1000:1000::/home/app:/bin/sh\n"
	busyboxGroup = "root:x:0:\n" +
		"staff:x:50:app\n" +
		"nogroup:x:65534:\n" +
		"app:x:1000:\n"
)

// baseEpoch is the time of every file and of the config of the busybox
// base, so its digest depends on the host's busybox only.
var baseEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxImage is a single-layer linux/amd64 image made from the host's
// static busybox: /bin/busybox and one symlink per applet in /bin,
// /etc/passwd (root, nobody, app 1000:1000), /etc/group (root, staff 50
// with member app, nogroup, app 1000), /tmp (1777), /root and /home/app
// (owned by 1000:1000). Env PATH=BasePATH, Cmd ["sh"]. Every time is
// fixed: the digest depends on the busybox binary only.
func BusyboxImage() (v1.Image, error) {
	bb, applets, err := HostBusybox(BusyboxBinary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	type entry struct {
		name     string
		typ      byte
		mode     int64
		uid, gid int
		link     string
		data     []byte
	}
	entries := []entry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, data: bb},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644, data: []byte(busyboxGroup)},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, data: []byte(busyboxPasswd)},
		{name: "home/", typ: tar.TypeDir, mode: 0o755},
		{name: "home/app/", typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	}
	for _, a := range applets {
		entries = append(entries, entry{name: "bin/" + a, typ: tar.TypeSymlink, mode: 0o777, link: "busybox"})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link,
			Size: int64(len(e.data)), ModTime: baseEpoch, Format: tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing the busybox base layer (%s): %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("writing the busybox base layer (%s): %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the busybox base layer: %w", err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, fmt.Errorf("making the busybox base layer: %w", err)
	}
	return baseImage(l, "testrig: busybox-static, applet links, passwd, group, /tmp, /root, /home/app", "sh")
}

// HostBusybox reads a static busybox and lists its applets, sorted,
// without "busybox" itself (a link named busybox would replace the binary).
// The rig's busybox image and the hoist image's rootfs both use it.
func HostBusybox(path string) ([]byte, []string, error) {
	const fix = "install Debian's busybox-static: apt-get install -y busybox-static (test/rig/install.sh does)"
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w (%s)", path, err, fix)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			f.Close()
			return nil, nil, fmt.Errorf("%s is dynamically linked: %s", path, fix)
		}
	}
	f.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("listing applets with %s --list: %w", path, err)
	}
	var applets []string
	hasSh := false
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		hasSh = hasSh || a == "sh"
		applets = append(applets, a)
	}
	if !hasSh {
		return nil, nil, fmt.Errorf("%s has no sh applet: %s", path, fix)
	}
	sort.Strings(applets)
	return data, applets, nil
}

// baseImage is a linux/amd64 image of one layer with Env PATH=BasePATH
// and Cmd [cmd], created at baseEpoch.
func baseImage(l v1.Layer, createdBy, cmd string) (v1.Image, error) {
	cfg := &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: baseEpoch},
		Config: v1.Config{
			Env: []string{"PATH=" + BasePATH},
			Cmd: []string{cmd},
		},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the base image's config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: baseEpoch}, CreatedBy: createdBy}})
	if err != nil {
		return nil, fmt.Errorf("appending the base layer: %w", err)
	}
	return img, nil
}

// DebianImage is a single-layer linux/amd64 Debian bookworm image (Env
// PATH=BasePATH, Cmd ["bash"]) made by `debootstrap --variant=minbase`
// from the host's apt mirror, without the downloaded .debs and apt lists.
// The rootfs is bootstrapped once and cached in cacheDir as a gzipped tar
// (DebianCacheFile), written atomically; concurrent callers, in this
// process or others, wait on a lock file while one of them bootstraps.
// debootstrap's output and a summary (time, files, bytes) go to log.
func DebianImage(ctx context.Context, cacheDir string, log io.Writer) (v1.Image, error) {
	if log == nil {
		log = io.Discard
	}
	cacheDir, err := filepath.Abs(cacheDir) // mount points are compared as absolute paths
	if err != nil {
		return nil, fmt.Errorf("resolving the cache directory: %w", err)
	}
	path := filepath.Join(cacheDir, DebianCacheFile)
	if _, err := os.Stat(path); err != nil {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the cache directory %s: %w", cacheDir, err)
		}
		unlock, err := lockFile(ctx, path+".lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if err := bootstrapDebian(ctx, cacheDir, path, log); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("reading the Debian base cache: %w", err)
		}
	}
	l, err := tarball.LayerFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Debian base layer %s: %w", path, err)
	}
	return baseImage(l, "testrig: debootstrap --variant=minbase "+DebianSuite, "bash")
}

// DebianCacheFile is the name of DebianImage's cached rootfs in its
// cache directory.
const DebianCacheFile = "debian-" + DebianSuite + "-minbase.tar.gz"

// lockFile takes an exclusive flock on path, polling so that ctx can end
// the wait, and returns its release.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file %s: %w", path, err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s (another process is bootstrapping Debian): %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// bootstrapDebian runs debootstrap into a temporary directory of cacheDir,
// trims it and writes it as a gzipped tar to dest (temp + rename).
func bootstrapDebian(ctx context.Context, cacheDir, dest string, log io.Writer) error {
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/debootstrap"); serr != nil {
			return fmt.Errorf("debootstrap is not installed: apt-get install -y debootstrap (test/rig/install.sh installs it): %w", err)
		}
		bin = "/usr/sbin/debootstrap"
	}
	mirror, err := aptMirror("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list")
	if err != nil {
		return err
	}
	// Leftovers of an interrupted run (the lock is held: nobody writes them).
	if stale, _ := filepath.Glob(filepath.Join(cacheDir, "debootstrap-*")); len(stale) > 0 {
		for _, d := range stale {
			removeRootfs(d)
		}
	}
	if stale, _ := filepath.Glob(filepath.Join(cacheDir, DebianCacheFile+".tmp-*")); len(stale) > 0 {
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	root, err := os.MkdirTemp(cacheDir, "debootstrap-")
	if err != nil {
		return fmt.Errorf("creating the debootstrap directory: %w", err)
	}
	defer removeRootfs(root)
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "--variant=minbase", DebianSuite, root, mirror)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin", "DEBIAN_FRONTEND=noninteractive")
	fmt.Fprintf(log, "testrig: %s --variant=minbase %s %s %s\n", bin, DebianSuite, root, mirror)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap --variant=minbase %s %s %s: %w (its output is in the log)", DebianSuite, root, mirror, err)
	}
	took := time.Since(start)
	if err := trimRootfs(root); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(cacheDir, DebianCacheFile+".tmp-")
	if err != nil {
		return fmt.Errorf("creating the Debian base cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	st, err := writeRootfsTar(tmp, root)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the Debian base cache %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("writing the Debian base cache: %w", err)
	}
	gz, _ := os.Stat(dest)
	var gzSize int64
	if gz != nil {
		gzSize = gz.Size()
	}
	fmt.Fprintf(log, "testrig: debootstrap took %s; rootfs %d entries (%d regular files), %.1f MB; %s is %.1f MB\n",
		took.Round(100*time.Millisecond), st.entries, st.files, float64(st.bytes)/1e6, dest, float64(gzSize)/1e6)
	return nil
}

// aptMirror is the Debian archive the host's apt uses: the first URIs:
// of deb822 (/etc/apt/sources.list.d/debian.sources), else the first deb
// line of legacy (/etc/apt/sources.list); security archives are passed
// over.
func aptMirror(deb822, legacy string) (string, error) {
	if data, err := os.ReadFile(deb822); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
			if ok && strings.EqualFold(k, "URIs") {
				for _, u := range strings.Fields(v) {
					if !strings.Contains(u, "security") {
						return u, nil
					}
				}
			}
		}
	}
	if data, err := os.ReadFile(legacy); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "deb" {
				continue
			}
			u := f[1]
			if strings.HasPrefix(u, "[") { // deb [options] uri
				for i := 1; i < len(f); i++ {
					if strings.HasSuffix(f[i], "]") && i+1 < len(f) {
						u = f[i+1]
						break
					}
				}
			}
			if !strings.Contains(u, "security") {
				return u, nil
			}
		}
	}
	return "", fmt.Errorf("no Debian mirror found: neither %s (URIs:) nor %s (deb lines) names one", deb822, legacy)
}

// trimRootfs removes the downloaded packages and apt's lists.
func trimRootfs(root string) error {
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/cache/apt/*.bin"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return fmt.Errorf("trimming the rootfs (%s): %w", pattern, err)
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return fmt.Errorf("trimming the rootfs: %w", err)
			}
		}
	}
	return nil
}

type tarStats struct {
	entries, files int
	bytes          int64
}

// writeRootfsTar writes root as a gzipped tar: owners, modes, times,
// hardlinks and xattrs kept; /dev, /proc and /sys empty (the runtime
// provides them).
func writeRootfsTar(w io.Writer, root string) (tarStats, error) {
	var st tarStats
	zw := pgzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if parent, _, _ := strings.Cut(rel, "/"); rel != parent && (parent == "dev" || parent == "proc" || parent == "sys") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSocket != 0 { // a tar cannot hold one

			return nil
		}
		target := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		sys, _ := fi.Sys().(*syscall.Stat_t)
		if sys != nil {
			hdr.Uid, hdr.Gid = int(sys.Uid), int(sys.Gid)
			if fi.Mode().IsRegular() && sys.Nlink > 1 {
				key := inode{uint64(sys.Dev), sys.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = rel
				}
			}
		}
		if xattrs, err := readXattrs(p); err != nil {
			return fmt.Errorf("%s: reading xattrs: %w", rel, err)
		} else if len(xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		st.entries++
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		st.files++
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		st.bytes += n
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if err := tw.Close(); err != nil {
		return st, err
	}
	return st, zw.Close()
}

// readXattrs reads a file's extended attributes (not following symlinks).
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if k == "" {
			continue
		}
		vsz, err := unix.Lgetxattr(p, k, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(p, k, v)
		if err != nil {
			return nil, err
		}
		out[k] = string(v[:vsz])
	}
	return out, nil
}

// removeRootfs removes a bootstrap directory, first detaching anything a
// failed debootstrap left mounted inside it (proc, sys), so the removal
// never reaches the host's /proc or /sys.
func removeRootfs(root string) {
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && (f[4] == root || strings.HasPrefix(f[4], root+"/")) {
				mounts = append(mounts, f[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // deepest first
		for _, m := range mounts {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
		for _, m := range mounts {
			if still, _ := isMounted(m); still {
				return // leave it rather than delete through a mount
			}
		}
	}
	_ = os.RemoveAll(root)
}

func isMounted(p string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == p {
			return true, nil
		}
	}
	return false, nil
}

// DebianImageT is DebianImage with the repository's .cache/rig as cache
// (the repository root is the first directory up from the working
// directory with a go.mod). Skipped under -short; any failure, a missing
// debootstrap included, fails the test.
func DebianImageT(t testing.TB) v1.Image {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a debootstrap Debian base (minutes the first time; cached in .cache/rig); skipped in -short mode")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	start := time.Now()
	img, err := DebianImage(t.Context(), filepath.Join(root, ".cache", "rig"), &log)
	if err != nil {
		t.Fatalf("%v\ndebootstrap's output, last lines:\n%s", err, lastLines(log.String(), logTailLines))
	}
	if log.Len() > 0 {
		t.Logf("Debian base bootstrapped in %s: %s", time.Since(start).Round(time.Second), lastLines(log.String(), 1))
	}
	return img
}

// RepoRoot is the first directory up from the working directory that
// holds a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PushImage pushes img to ref (plain HTTP allowed) with the test's
// context; opts come after it, so they may override it.
func PushImage(t testing.TB, img v1.Image, ref string, opts ...remote.Option) v1.Descriptor {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %q: %v", ref, err)
	}
	if err := remote.Write(r, img, withContext(t, opts)...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return describe(t, img)
}
