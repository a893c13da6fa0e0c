package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

// requireBusybox fails (skips in -short) without Debian's busybox-static.
func requireBusybox(t *testing.T) {
	t.Helper()
	if err := requireStatic(busyboxPath); err != nil {
		if testing.Short() {
			t.Skipf("%s: %v (apt-get install -y busybox-static); skipped in -short mode", busyboxPath, err)
		}
		t.Fatalf("%s: %v: run `make rig-install` or apt-get install -y busybox-static", busyboxPath, err)
	}
}

// staticBinary builds a tiny static program into dir/name.
func staticBinary(t *testing.T, dir, name string) {
	t.Helper()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "building a static test binary: %s", out)
}

// files lists a layer's entries: path → type and mode or link target.
func files(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		require.NoError(t, err)
		require.True(t, h.ModTime.Equal(time.Unix(0, 0)), "%s has mtime %s", h.Name, h.ModTime)
		require.Zero(t, h.Uid, h.Name)
		switch h.Typeflag {
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		default:
			got[h.Name] = string(h.Typeflag) + " " + os.FileMode(h.Mode).Perm().String() + sticky(h.Mode)
		}
	}
}

func sticky(mode int64) string {
	if mode&0o1000 != 0 {
		return "+t"
	}
	return ""
}

func TestBuild(t *testing.T) {
	requireBusybox(t)
	bins := t.TempDir()
	staticBinary(t, bins, "retag")
	require.NoError(t, os.WriteFile(filepath.Join(bins, "README"), []byte("not a tool"), 0o644))
	// A directory with the multi-call binary: the tools' own binaries
	// beside it (go build ./actions/...) are replaced by links to it.
	multi := t.TempDir()
	for _, name := range []string{multiCall, "retag", "publish-helm"} {
		staticBinary(t, multi, name)
	}
	multiFiles := map[string]string{
		"usr/local/bin/hoist":                  "0 -rwxr-xr-x",
		"usr/local/bin/publish-helm":           "0 -rwxr-xr-x",
		"usr/local/bin/retag":                  "-> hoist",
		"kaniko/":                              "5 -rwxr-xr-x",
		"kaniko/.docker/":                      "5 -rwxr-xr-x",
		"kaniko/executor":                      "-> /usr/local/bin/hoist",
		"kaniko/ssl/certs/":                    "5 -rwxr-xr-x",
		"kaniko/ssl/certs/ca-certificates.crt": "-> /etc/ssl/certs/ca-certificates.crt",
		"busybox":                              "-> bin",
	}
	for _, tool := range spec.Tools() {
		multiFiles["usr/local/bin/"+tool.Name] = "-> hoist"
	}

	tests := []struct {
		name       string
		binaries   string
		wantLayers int
		wantTitle  string
		wantFiles  map[string]string
	}{
		{
			name: "busybox base", wantLayers: 1, wantTitle: "hoist-rig-busybox",
			wantFiles: map[string]string{
				"bin/busybox":                       "0 -rwxr-xr-x",
				"bin/sh":                            "-> busybox",
				"bin/tail":                          "-> busybox",
				"usr/bin/env":                       "-> /bin/env",
				"tmp/":                              "5 -rwxrwxrwx+t",
				"root/":                             "5 -rwx------",
				"etc/passwd":                        "0 -rw-r--r--",
				"etc/group":                         "0 -rw-r--r--",
				"etc/ssl/certs/ca-certificates.crt": "0 -rw-r--r--",
			},
		},
		{
			name: "with tools", binaries: bins, wantLayers: 2, wantTitle: "hoist",
			wantFiles: map[string]string{"usr/local/bin/retag": "0 -rwxr-xr-x"},
		},
		{name: "multi-call", binaries: multi, wantLayers: 2, wantTitle: "hoist", wantFiles: multiFiles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--tag", "example.test/hoist:1", "--tarball", filepath.Join(t.TempDir(), "image.tar")}
			if tc.binaries != "" {
				args = append(args, "--binaries", tc.binaries)
			}
			opts, err := parseFlags(args, func(string) string { return "" })
			require.NoError(t, err)
			img, err := build(opts)
			require.NoError(t, err)

			again, err := build(opts)
			require.NoError(t, err)
			d1, err := img.Digest()
			require.NoError(t, err)
			d2, err := again.Digest()
			require.NoError(t, err)
			require.Equal(t, d1, d2, "two builds of the same inputs differ")

			cfg, err := img.ConfigFile()
			require.NoError(t, err)
			require.Equal(t, []string{"PATH=" + imagePATH}, cfg.Config.Env)
			require.Equal(t, []string{"/bin/sh"}, cfg.Config.Cmd)
			require.Empty(t, cfg.Config.Entrypoint)
			require.Empty(t, cfg.Config.User)
			require.Equal(t, tc.wantTitle, cfg.Config.Labels["org.opencontainers.image.title"])
			require.Equal(t, "linux", cfg.OS)

			layers, err := img.Layers()
			require.NoError(t, err)
			require.Len(t, layers, tc.wantLayers)
			got := map[string]string{}
			for _, l := range layers {
				for k, v := range files(t, l) {
					got[k] = v
				}
			}
			for path, want := range tc.wantFiles {
				require.Equal(t, want, got[path], path)
			}
			require.NotContains(t, got, "usr/local/bin/README", "a non-executable file was installed as a tool")
			require.Equal(t, "0 -rwxr-xr-x", got["bin/busybox"], "an applet link replaced the busybox binary")

			require.NoError(t, write(context.Background(), img, opts, io.Discard))
			loaded, err := tarball.ImageFromPath(opts.Tarball, nil)
			require.NoError(t, err)
			ld, err := loaded.Digest()
			require.NoError(t, err)
			require.Equal(t, d1, ld)
		})
	}
}

func TestBuildRefusesDynamicBinaries(t *testing.T) {
	requireBusybox(t)
	bins := t.TempDir()
	// /bin/sh on Debian is dash, dynamically linked.
	data, err := os.ReadFile("/bin/dash")
	if err != nil {
		t.Skipf("no dynamically linked binary to test with: %v", err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(bins, "dash"), data, 0o755))
	opts, err := parseFlags([]string{"--binaries", bins, "--layout", t.TempDir()}, func(string) string { return "" })
	require.NoError(t, err)
	_, err = build(opts)
	require.ErrorContains(t, err, "dynamically linked")
	require.ErrorContains(t, err, "CGO_ENABLED=0")
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "nothing to write", args: []string{"--tag", "a/b:c"}, wantErr: "nothing to write"},
		{name: "tarball without tag", args: []string{"--tarball", "x.tar"}, wantErr: "--tag"},
		{name: "stray argument", args: []string{"--push", "--tag", "a/b:c", "extra"}, wantErr: "unexpected arguments"},
		{name: "bad epoch", args: []string{"--layout", "d"}, env: map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, wantErr: "SOURCE_DATE_EPOCH"},
		{
			name: "default tag with binaries",
			args: []string{"--binaries", "bin", "--tarball", "x.tar"},
			check: func(t *testing.T, o options) {
				require.Equal(t, []string{spec.Image()}, o.Tags)
			},
		},
		{
			name: "epoch and repeated tags",
			args: []string{"--tag", "a/b:1", "--tag", "a/b:2", "--tarball", "x.tar"},
			env:  map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
			check: func(t *testing.T, o options) {
				require.Equal(t, []string{"a/b:1", "a/b:2"}, o.Tags)
				require.Equal(t, int64(1700000000), o.Epoch.Unix())
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, o)
		})
	}
}

// TestDockerfileAgrees keeps the Dockerfile and mkimage in step: same PATH,
// same tool directory, same files, same labels, no USER, no ENTRYPOINT.
func TestDockerfileAgrees(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "Dockerfile"))
	require.NoError(t, err)
	df := string(data)
	require.Contains(t, df, "ENV PATH="+imagePATH+"\n")
	require.Contains(t, df, "COPY --from=build /out/ "+toolDir+"/\n")
	require.Contains(t, df, "CMD [\"/bin/sh\"]")
	for _, s := range []string{busyboxPath, caBundlePath, "chmod 1777 /rootfs/tmp", "ln -s /bin/env /rootfs/usr/bin/env", `[ "$applet" = busybox ] ||`} {
		require.Contains(t, df, s)
	}
	require.Contains(t, df, `printf '`+strings.ReplaceAll(passwd, "\n", `\n`)+`' >/rootfs/etc/passwd`)
	require.Contains(t, df, `printf '`+strings.ReplaceAll(group, "\n", `\n`)+`' >/rootfs/etc/group`)
	for k, v := range labels(options{Version: "${VERSION}", Title: "hoist"}) {
		require.Contains(t, df, k+`="`+v+`"`)
	}
	for _, forbidden := range []string{"USER", "ENTRYPOINT"} {
		require.False(t, regexp.MustCompile(`(?m)^`+forbidden+`\b`).MatchString(df), "the Dockerfile has a %s line", forbidden)
	}
	require.True(t, bytes.Contains(data, []byte("CGO_ENABLED=0 go build -trimpath")), "the Dockerfile must build static binaries")
	// The same links to the multi-call binary.
	names := make([]string, 0, len(spec.Tools()))
	for _, tool := range spec.Tools() {
		names = append(names, tool.Name)
	}
	require.Contains(t, df, "for tool in "+strings.Join(names, " ")+"; do")
	require.Contains(t, df, `ln -s `+multiCall+` "/rootfs`+toolDir+`/$tool"`)
	require.Contains(t, df, "mkdir -p /rootfs"+kanikoDir+"/.docker /rootfs"+kanikoDir+"/ssl/certs")
	require.Contains(t, df, "ln -s "+toolDir+"/"+multiCall+" /rootfs"+kanikoExecutor)
	require.Contains(t, df, "ln -s "+caBundlePath+" /rootfs"+kanikoCABundle)
	require.Contains(t, df, "ln -s bin /rootfs/busybox")
	require.Contains(t, df, "./actions/"+multiCall+"\n")
}
