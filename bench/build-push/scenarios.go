package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// scenario is one build every tool runs per round.
type scenario struct {
	id    string // --scenarios name
	title string // report heading
	// base is the base image's repository in the registry ("base/busybox:1").
	base string
	// dockerfile is the Dockerfile; the base comes in as ARG BASE.
	dockerfile string
	// files is the number of context files under app/.
	files int
	// warmOf names the scenario whose cache repository this one reuses (a
	// warm rebuild): same context, same Dockerfile, a new process, a new
	// tag and no local state.
	warmOf string
	// want describes the built image.
	want expectation
	// target is the ratio target hoist/kaniko (0: none).
	target float64
	// zeroLayerBytes: the target also asks for 0 layer bytes moved.
	zeroLayerBytes bool
	// rssTarget is hoist's peak RSS target in bytes (0: none).
	rssTarget int64
}

// expectation is what the layers a tool added on top of the base must
// hold, together.
type expectation struct {
	// counts: number of regular files under each directory (recursive).
	counts map[string]int
	// contents: exact contents of files.
	contents map[string]string
	// nonEmpty: files that must exist with some content.
	nonEmpty []string
}

const (
	busyboxBase = "base/busybox:1"
	debianBase  = "base/debian:bookworm"
)

const copyDockerfile = `ARG BASE
FROM ${BASE}
COPY app/ /app/
CMD ["/bin/busybox", "ls", "/app"]
`

// busyboxRunDockerfile writes 2,000 files in 20 directories with a
// busybox shell loop, then copies the context.
const busyboxRunDockerfile = `ARG BASE
FROM ${BASE}
RUN set -e; for d in $(seq 0 19); do mkdir -p /data/d$d; for f in $(seq 0 99); do echo "file $d/$f" > /data/d$d/f$f.txt; done; done
COPY app/ /app/
CMD ["ls", "/data", "/app"]
`

// debianDockerfile: a small RUN, a COPY, and a RUN that reads both the
// copied files and dpkg's database.
const debianDockerfile = `ARG BASE
FROM ${BASE}
RUN set -e; mkdir -p /opt/app; echo bench > /etc/bench-marker
COPY app/ /opt/app/
RUN set -e; find /opt/app -type f | wc -l > /opt/app.count; dpkg-query -W -f '${Package}\n' > /opt/packages.txt
CMD ["cat", "/opt/app.count"]
`

func scenarios(copyFiles int) []scenario {
	return []scenario{
		{
			id: "copy", title: "COPY only, cold", base: busyboxBase, dockerfile: copyDockerfile, files: copyFiles,
			want:   expectation{counts: map[string]int{"app": copyFiles}},
			target: 0.5,
		},
		{
			id: "copy-warm", title: "COPY only, warm", base: busyboxBase, dockerfile: copyDockerfile, files: copyFiles, warmOf: "copy",
			want:   expectation{counts: map[string]int{"app": copyFiles}},
			target: 0.2, zeroLayerBytes: true,
		},
		{
			id: "busybox-run", title: "(a) busybox + RUN 2,000 files + COPY 400, cold", base: busyboxBase, dockerfile: busyboxRunDockerfile, files: 400,
			want: expectation{
				counts:   map[string]int{"data": 2000, "app": 400},
				contents: map[string]string{"data/d7/f42.txt": "file 7/42\n", "data/d19/f99.txt": "file 19/99\n"},
			},
			target: 0.7,
		},
		{
			id: "debian", title: "(b) Debian + RUN + COPY 400 + RUN, cold", base: debianBase, dockerfile: debianDockerfile, files: 400,
			want: expectation{
				counts:   map[string]int{"opt/app": 400},
				contents: map[string]string{"etc/bench-marker": "bench\n", "opt/app.count": "400\n"},
				nonEmpty: []string{"opt/packages.txt"},
			},
			target: 0.3, rssTarget: 200e6,
		},
		{
			id: "debian-warm", title: "(c) warm rebuild of (b)", base: debianBase, dockerfile: debianDockerfile, files: 400, warmOf: "debian",
			want: expectation{
				counts:   map[string]int{"opt/app": 400},
				contents: map[string]string{"etc/bench-marker": "bench\n", "opt/app.count": "400\n"},
				nonEmpty: []string{"opt/packages.txt"},
			},
			target: 0.1, zeroLayerBytes: true,
		},
	}
}

// makeContext writes the Dockerfile and n files of 1-8 kB (fixed seed)
// under app/, and returns their total size.
func makeContext(dir, dockerfile string, n int) (int64, error) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, "app", fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%04d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, fmt.Errorf("writing the context: %w", err)
		}
		b := make([]byte, 1024+rnd.IntN(7*1024))
		for j := range b {
			b[j] = byte('a' + rnd.IntN(26))
		}
		total += int64(len(b))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return 0, fmt.Errorf("writing the context: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return 0, fmt.Errorf("writing the context: %w", err)
	}
	return total, nil
}

// verify pulls ref (straight from the registry) and checks that the
// layers added on top of base (those whose diff ID is not one of the
// base's) hold what want says. It returns the layer digests of the image
// and of its base, so that the traffic can tell layers from configs.
func verify(ctx context.Context, ref string, base v1.Image, want expectation) (layers map[string]bool, err error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %s: %w", ref, err)
	}
	if cf.OS != "linux" {
		return nil, fmt.Errorf("%s: config os %q, want linux", ref, cf.OS)
	}
	baseIDs := map[v1.Hash]bool{}
	baseLayers, err := base.Layers()
	if err != nil {
		return nil, err
	}
	layers = map[string]bool{}
	for _, l := range baseLayers {
		id, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		baseIDs[id] = true
		if d, err := l.Digest(); err == nil {
			layers[d.String()] = true
		}
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers of %s: %w", ref, err)
	}
	if len(ls) <= len(baseLayers) {
		return nil, fmt.Errorf("%s has %d layers, its base %d: nothing was added", ref, len(ls), len(baseLayers))
	}
	files := map[string]string{} // path → contents (only for wanted files), "" otherwise
	wanted := map[string]bool{}
	for p := range want.contents {
		wanted[p] = true
	}
	for _, p := range want.nonEmpty {
		wanted[p] = true
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		layers[d.String()] = true
		id, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		if baseIDs[id] {
			continue
		}
		if err := readLayer(l, files, wanted); err != nil {
			return nil, fmt.Errorf("reading layer %s of %s: %w", d, ref, err)
		}
	}
	var problems []string
	for dir, n := range want.counts {
		got := 0
		for p := range files {
			if strings.HasPrefix(p, dir+"/") {
				got++
			}
		}
		if got != n {
			problems = append(problems, fmt.Sprintf("%d files under /%s, want %d", got, dir, n))
		}
	}
	for p, c := range want.contents {
		if got, ok := files[p]; !ok || got != c {
			problems = append(problems, fmt.Sprintf("/%s is %q, want %q", p, got, c))
		}
	}
	for _, p := range want.nonEmpty {
		if files[p] == "" {
			problems = append(problems, fmt.Sprintf("/%s is missing or empty", p))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%s: %s", ref, strings.Join(problems, "; "))
	}
	return layers, nil
}

// readLayer adds the regular files of a layer to files (later layers
// win; whiteouts remove), keeping the contents of the wanted ones.
func readLayer(l v1.Layer, files map[string]string, wanted map[string]bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(p)
		if base == ".wh..wh..opq" {
			for q := range files {
				if strings.HasPrefix(q, dir) {
					delete(files, q)
				}
			}
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			gone := dir + strings.TrimPrefix(base, ".wh.")
			for q := range files {
				if q == gone || strings.HasPrefix(q, gone+"/") {
					delete(files, q)
				}
			}
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		files[p] = ""
		if wanted[p] {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return err
			}
			files[p] = string(b)
		}
	}
}
