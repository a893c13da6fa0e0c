package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hoist-ci/hoist/internal/spec"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// The image's layout; the Dockerfile at the repository root writes the same
// (dockerfile_test.go checks the two agree).
const (
	imagePATH    = "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"
	toolDir      = "/usr/local/bin"
	busyboxPath  = "/bin/busybox"
	caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
	sourceURL    = "https://github.com/hoist-ci/hoist"
	passwd       = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group        = "root:x:0:\nnogroup:x:65534:\n"

	// multiCall is hoist's one binary (actions/hoist); the tools are
	// links to it.
	multiCall      = "hoist"
	kanikoDir      = "/kaniko"
	kanikoExecutor = kanikoDir + "/executor"
	// kanikoCABundle is kaniko's CA bundle, a link to the image's: a job
	// appending a private CA to it (GitLab's documented kaniko job) adds it
	// to the system's; /kaniko/ssl/certs is in the executor's SSL_CERT_DIR.
	kanikoCABundle = kanikoDir + "/ssl/certs/ca-certificates.crt"
)

// labels are the image's OCI labels.
func labels(opts options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":  sourceURL,
		"org.opencontainers.image.version": opts.Version,
		"org.opencontainers.image.title":   opts.Title,
	}
}

// build assembles the image: a rootfs layer (busybox and its applets, passwd,
// group, /tmp, CA certificates) and, with --binaries, a layer of tools.
func build(opts options) (v1.Image, error) {
	base, err := rootfsLayer(opts)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: opts.Epoch},
		Config: v1.Config{
			Env:    []string{"PATH=" + imagePATH},
			Cmd:    []string{"/bin/sh"},
			Labels: labels(opts),
		},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	adds := []mutate.Addendum{{
		Layer:   base,
		History: v1.History{Created: v1.Time{Time: opts.Epoch}, CreatedBy: "mkimage: busybox-static, applet links, passwd, group, /tmp, CA certificates"},
	}}
	if opts.Binaries != "" {
		tools, names, err := toolsLayer(opts.Binaries, opts.Epoch)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:   tools,
			History: v1.History{Created: v1.Time{Time: opts.Epoch}, CreatedBy: "mkimage: " + toolDir + "/{" + strings.Join(names, ",") + "}"},
		})
	}
	if len(opts.HostBinaries) > 0 {
		host, err := hostBinariesLayer(opts.HostBinaries, opts.Epoch)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:   host,
			History: v1.History{Created: v1.Time{Time: opts.Epoch}, CreatedBy: "mkimage: host binaries " + strings.Join(opts.HostBinaries, " ") + " and their shared libraries"},
		})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	return img, nil
}

func rootfsLayer(opts options) (v1.Layer, error) {
	bb, applets, err := testrig.HostBusybox(opts.Busybox)
	if err != nil {
		return nil, fmt.Errorf("--busybox: %w", err)
	}
	certs, err := os.ReadFile(opts.CACertificate)
	if err != nil {
		return nil, fmt.Errorf("reading --ca-certificates %s: %w (install Debian's ca-certificates)", opts.CACertificate, err)
	}

	l := newLayerWriter(opts.Epoch)
	for _, d := range []struct {
		path string
		mode int64
	}{
		{"bin", 0o755}, {"etc", 0o755}, {"etc/ssl", 0o755}, {"etc/ssl/certs", 0o755},
		{"root", 0o700}, {"tmp", 0o1777},
		{"usr", 0o755}, {"usr/bin", 0o755}, {"usr/local", 0o755}, {"usr/local/bin", 0o755}, {"usr/local/sbin", 0o755},
	} {
		l.dir(d.path, d.mode)
	}
	l.file(strings.TrimPrefix(busyboxPath, "/"), 0o755, bb)
	for _, a := range applets {
		l.symlink("bin/"+a, "busybox")
	}
	// Scripts start with #!/usr/bin/env.
	l.symlink("usr/bin/env", "/bin/env")
	l.file("etc/passwd", 0o644, []byte(passwd))
	l.file("etc/group", 0o644, []byte(group))
	l.file(strings.TrimPrefix(caBundlePath, "/"), 0o644, certs)
	return l.layer()
}

// toolsLayer installs the executables of dir in toolDir. When dir holds
// the multi-call binary (multiCall), it is installed alone in place of the
// tools it runs: each of them (every spec tool) is a link to it, and so is
// kaniko's /kaniko/executor, beside an empty /kaniko/.docker for
// credentials as kaniko's image has; other executables (publish-helm) are
// installed as they are. /kaniko also has ssl/certs (kaniko's
// SSL_CERT_DIR, its ca-certificates.crt a link to the image's bundle), and
// /busybox is a link to /bin, as kaniko's debug image has its shell there.
func toolsLayer(dir string, epoch time.Time) (v1.Layer, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading --binaries %s: %w", dir, err)
	}
	multi := false
	if info, err := os.Stat(filepath.Join(dir, multiCall)); err == nil && info.Mode().IsRegular() {
		multi = true
	}
	linked := map[string]bool{}
	if multi {
		for _, t := range spec.Tools() {
			linked[t.Name] = true
		}
	}
	l := newLayerWriter(epoch)
	var names []string
	for _, e := range entries { // sorted by name
		if linked[e.Name()] {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("reading --binaries %s: %w", p, err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue
		}
		if err := requireStatic(p); err != nil {
			return nil, nil, fmt.Errorf("--binaries %s: %w (build it with CGO_ENABLED=0, as `make build` does)", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", p, err)
		}
		l.file(strings.TrimPrefix(toolDir, "/")+"/"+e.Name(), 0o755, data)
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("--binaries %s holds no executable file: run `make build` first", dir)
	}
	if multi {
		for _, t := range spec.Tools() {
			l.symlink(strings.TrimPrefix(toolDir, "/")+"/"+t.Name, multiCall)
			names = append(names, t.Name+"->"+multiCall)
		}
		k := strings.TrimPrefix(kanikoDir, "/")
		for _, d := range []string{k, k + "/.docker", k + "/ssl", k + "/ssl/certs"} {
			l.dir(d, 0o755)
		}
		l.symlink(strings.TrimPrefix(kanikoExecutor, "/"), toolDir+"/"+multiCall)
		l.symlink(strings.TrimPrefix(kanikoCABundle, "/"), caBundlePath)
		// kaniko's debug image has its shell in /busybox.
		l.symlink("busybox", "bin")
		names = append(names, kanikoExecutor+"->"+multiCall)
	}
	layer, err := l.layer()
	return layer, names, err
}

// requireStatic fails unless path is an ELF executable without an interpreter
// (a dynamically linked binary would not start in a FROM scratch image).
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked")
		}
	}
	return nil
}

// layerWriter writes a tar with root-owned entries and one fixed timestamp.
type layerWriter struct {
	buf   bytes.Buffer
	tw    *tar.Writer
	epoch time.Time
	err   error
}

func newLayerWriter(epoch time.Time) *layerWriter {
	l := &layerWriter{epoch: epoch}
	l.tw = tar.NewWriter(&l.buf)
	return l
}

func (l *layerWriter) header(h *tar.Header) {
	if l.err != nil {
		return
	}
	h.ModTime, h.Uname, h.Gname, h.Format = l.epoch, "root", "root", tar.FormatPAX
	if l.err = l.tw.WriteHeader(h); l.err != nil {
		l.err = fmt.Errorf("writing %s: %w", h.Name, l.err)
	}
}

func (l *layerWriter) dir(path string, mode int64) {
	l.header(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: mode})
}

func (l *layerWriter) symlink(path, target string) {
	l.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: path, Linkname: target, Mode: 0o777})
}

func (l *layerWriter) file(path string, mode int64, data []byte) {
	l.header(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data))})
	if l.err == nil {
		if _, l.err = l.tw.Write(data); l.err != nil {
			l.err = fmt.Errorf("writing %s: %w", path, l.err)
		}
	}
}

func (l *layerWriter) layer() (v1.Layer, error) {
	if l.err == nil {
		l.err = l.tw.Close()
	}
	if l.err != nil {
		return nil, fmt.Errorf("assembling a layer: %w", l.err)
	}
	data := l.buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressedCaching, tarball.WithCompressionLevel(gzip.DefaultCompression))
	if err != nil {
		return nil, fmt.Errorf("compressing a layer: %w", err)
	}
	return layer, nil
}
