package buildpush

import (
	"archive/tar"
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// zeroLayer is a layer holding one file of size zero bytes: a few
// hundred KiB compressed, size bytes unpacked.
func zeroLayer(t *testing.T, name string, size int64) v1.Layer {
	t.Helper()
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
			if err == nil {
				_, err = io.Copy(tw, io.LimitReader(zeros{}, size))
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	l, err := tarball.LayerFromOpener(open)
	require.NoError(t, err)
	return l
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestScratchInMemoryIsBounded: a small layer that inflates far past what
// memory allows never fills the tmpfs: unpacking stops at the limit (half
// the free room) and moves to the disk, and the RUN sees the whole file.
// The tmpfs here is a 64 MiB one standing in for /dev/shm; the layer is
// 256 MiB of zeros, about 250 KiB compressed.
func TestScratchInMemoryIsBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs")
	}
	shm := t.TempDir()
	require.NoError(t, unix.Mount("tmpfs", shm, "tmpfs", 0, "size=64m"))
	t.Cleanup(func() { _ = unix.Unmount(shm, unix.MNT_DETACH) })

	e := runEnv(t)
	big := zeroLayer(t, "big", 256<<20)
	img, err := mutate.AppendLayers(e.baseImg, big)
	require.NoError(t, err)
	size, err := big.Size()
	require.NoError(t, err)
	require.Less(t, size, int64(2<<20), "the layer is small compressed")
	bombed := e.host + "/base/bomb:1"
	ref, err := name.ParseReference(bombed, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))

	// The tmpfs's use, sampled while the build runs.
	var mu sync.Mutex
	peak := int64(0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var st unix.Statfs_t
			if unix.Statfs(shm, &st) == nil {
				used := int64(st.Blocks-st.Bfree) * st.Bsize
				mu.Lock()
				peak = max(peak, used)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var logs bytes.Buffer
	res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN wc -c < /big > /size\n"}, func(o *Options) {
		o.BuildArgs["BASE"] = bombed
		o.memory = memoryScratch{dir: shm, min: 16 << 20}
		o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	close(stop)
	<-done
	require.NoError(t, err, out)
	require.Contains(t, logs.String(), `msg="unpacking the stage in memory" dir=`+shm)
	require.Contains(t, logs.String(), "the stage unpacks to more than memory allows: unpacking it on disk")
	require.Contains(t, logs.String(), "the layers unpack to more than the limit of 32 MiB")
	mu.Lock()
	require.LessOrEqual(t, peak, int64(33<<20), "the tmpfs never held more than the limit")
	mu.Unlock()
	f, ok := fileOf(t, pull(t, res.Tags[0]), "size")
	require.True(t, ok)
	require.Equal(t, "268435456", strings.TrimSpace(f.Content), "the RUN saw the whole file")
	entries, err := os.ReadDir(shm)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing is left in the tmpfs")
}
