package testrig

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

type tarEntry struct {
	typ      byte
	mode     int64
	uid, gid int
	link     string
	data     string
}

// layerEntries reads the only layer of img; contents of regular files
// are kept for the names keep accepts.
func layerEntries(t *testing.T, img v1.Image, keep func(string) bool) map[string]tarEntry {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]tarEntry{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		e := tarEntry{typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname}
		if hdr.Typeflag == tar.TypeReg && keep(hdr.Name) {
			data, err := io.ReadAll(tr)
			require.NoError(t, err)
			e.data = string(data)
		}
		out[hdr.Name] = e
	}
	return out
}

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(BusyboxBinary); err != nil {
		if testing.Short() {
			t.Skipf("%s: %v (apt-get install -y busybox-static); skipped in -short mode", BusyboxBinary, err)
		}
		t.Fatalf("%s: %v: busybox-static is part of the rig (test/rig/install.sh)", BusyboxBinary, err)
	}
}

func TestBusyboxImage(t *testing.T) {
	requireBusybox(t)
	img, err := BusyboxImage()
	require.NoError(t, err)

	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, "linux", cf.OS)
	require.Equal(t, "amd64", cf.Architecture)
	require.Equal(t, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cf.Config.Env)
	require.Equal(t, []string{"sh"}, cf.Config.Cmd)

	files := layerEntries(t, img, func(n string) bool { return strings.HasPrefix(n, "etc/") })
	bb, err := os.ReadFile(BusyboxBinary)
	require.NoError(t, err)
	tests := []struct {
		name string
		want tarEntry
	}{
		{"bin/", tarEntry{typ: tar.TypeDir, mode: 0o755}},
		{"bin/sh", tarEntry{typ: tar.TypeSymlink, mode: 0o777, link: "busybox"}},
		{"bin/ls", tarEntry{typ: tar.TypeSymlink, mode: 0o777, link: "busybox"}},
		{"bin/id", tarEntry{typ: tar.TypeSymlink, mode: 0o777, link: "busybox"}},
		{"etc/passwd", tarEntry{typ: tar.TypeReg, mode: 0o644, data: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n"}},
		{"etc/group", tarEntry{typ: tar.TypeReg, mode: 0o644, data: "root:x:0:\nstaff:x:50:app\nnogroup:x:65534:\napp:x:1000:\n"}},
		{"tmp/", tarEntry{typ: tar.TypeDir, mode: 0o1777}},
		{"root/", tarEntry{typ: tar.TypeDir, mode: 0o700}},
		{"home/app/", tarEntry{typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := files[tt.name]
			require.True(t, ok, "%s is in the layer", tt.name)
			require.Equal(t, tt.want, got)
		})
	}
	require.Equal(t, byte(tar.TypeReg), files["bin/busybox"].typ, "bin/busybox is the binary, not an applet link")
	require.Equal(t, int64(0o755), files["bin/busybox"].mode)
	layers, err := img.Layers()
	require.NoError(t, err)
	size, err := layers[0].Size()
	require.NoError(t, err)
	require.Less(t, size, int64(len(bb)), "the layer is compressed")

	again, err := BusyboxImage()
	require.NoError(t, err)
	d1, err := img.Digest()
	require.NoError(t, err)
	d2, err := again.Digest()
	require.NoError(t, err)
	require.Equal(t, d1, d2, "the busybox base is reproducible")
}

func TestPushImage(t *testing.T) {
	requireBusybox(t)
	host := InProcessRegistry(t)
	img, err := BusyboxImage()
	require.NoError(t, err)
	desc := PushImage(t, img, host+"/base/busybox:1")
	r := parseRef(t, host+"/base/busybox:1")
	got, err := remote.Head(r, remote.WithContext(t.Context()))
	require.NoError(t, err)
	require.Equal(t, desc.Digest, got.Digest)
}

func TestAptMirror(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	deb822 := write("debian.sources", "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n")
	securityFirst := write("security.sources", "Types: deb\nURIs: http://deb.debian.org/debian-security\n\nTypes: deb\nURIs: http://mirror.example/debian\n")
	legacy := write("sources.list", "# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://legacy.example/debian bookworm main\n")
	empty := write("empty", "")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name           string
		deb822, legacy string
		want           string
	}{
		{"deb822", deb822, legacy, "http://deb.debian.org/debian"},
		{"security archive passed over", securityFirst, legacy, "http://mirror.example/debian"},
		{"sources.list with options", missing, legacy, "http://legacy.example/debian"},
		{"deb822 without URIs", empty, legacy, "http://legacy.example/debian"},
		{"none", missing, empty, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := aptMirror(tt.deb822, tt.legacy)
			if tt.want == "" {
				require.ErrorContains(t, err, "no Debian mirror found")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestLockFileWaitsForTheHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(t.Context(), p)
	require.NoError(t, err)
	var mu sync.Mutex
	var order []string
	done := make(chan error)
	go func() {
		un, err := lockFile(t.Context(), p)
		if err == nil {
			mu.Lock()
			order = append(order, "second")
			mu.Unlock()
			un()
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	order = append(order, "first releases")
	mu.Unlock()
	unlock()
	require.NoError(t, <-done)
	require.Equal(t, []string{"first releases", "second"}, order)
}

// TestDebianImage bootstraps (once, cached in .cache/rig) the Debian base
// and checks it is bookworm, trimmed of apt's downloads, with /dev empty.
// Two callers at once get the same image.
func TestDebianImage(t *testing.T) {
	img := DebianImageT(t)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, []string{"bash"}, cf.Config.Cmd)
	require.Equal(t, []string{"PATH=" + BasePATH}, cf.Config.Env)

	files := layerEntries(t, img, func(n string) bool { return n == "etc/os-release" || n == "usr/lib/os-release" })
	osRelease := files["etc/os-release"]
	if osRelease.typ == tar.TypeSymlink {
		osRelease = files["usr/lib/os-release"]
	}
	require.Contains(t, osRelease.data, "VERSION_CODENAME=bookworm")
	var debs, lists, dev, regular int
	for n, e := range files {
		switch {
		case strings.HasPrefix(n, "var/cache/apt/archives/") && strings.HasSuffix(n, ".deb"):
			debs++
		case strings.HasPrefix(n, "var/lib/apt/lists/") && n != "var/lib/apt/lists/":
			lists++
		case strings.HasPrefix(n, "dev/") && n != "dev/":
			dev++
		}
		if e.typ == tar.TypeReg {
			regular++
		}
	}
	require.Zero(t, debs, ".debs removed")
	require.Zero(t, lists, "apt lists removed")
	require.Zero(t, dev, "/dev is empty")
	require.Equal(t, tarEntry{typ: tar.TypeSymlink, mode: 0o777, link: "usr/bin"}, files["bin"], "bookworm merges /usr")
	require.Equal(t, byte(tar.TypeReg), files["usr/bin/bash"].typ)
	require.Equal(t, byte(tar.TypeReg), files["usr/bin/dpkg"].typ)
	t.Logf("Debian base: %d entries, %d regular files", len(files), regular)

	root, err := RepoRoot()
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)
	var wg sync.WaitGroup
	digests := make([]v1.Hash, 2)
	errs := make([]error, 2)
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := DebianImage(t.Context(), filepath.Join(root, ".cache", "rig"), nil)
			if err == nil {
				digests[i], err = img.Digest()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range digests {
		require.NoError(t, errs[i])
		require.Equal(t, want, digests[i])
	}
}
