package buildpush

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/snapshot"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// eachMethod runs a test with each snapshot method this host can use
// (as root here: both).
func eachMethod(t *testing.T, test func(t *testing.T, e *env)) {
	for _, m := range []snapshot.Choice{snapshot.ChooseOverlay, snapshot.ChooseIndex} {
		t.Run(string(m), func(t *testing.T) {
			if m == snapshot.ChooseOverlay && os.Geteuid() != 0 {
				t.Skip("overlayfs needs root here; the index method is tested")
			}
			if m == snapshot.ChooseOverlay {
				if err := snapshot.OverlayUsable(t.Context(), t.TempDir()); err != nil {
					// Detected: this kernel mounts no overlayfs. A build that
					// asks for it says so; auto uses the index (tested below).
					t.Logf("no overlayfs on this kernel (%v): checking the error instead", err)
					e := runEnv(t)
					e.snapshot = m
					_, _, berr := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN true\n"}, nil)
					require.ErrorContains(t, berr, "snapshot-method overlay: snapshot overlay:")
					return
				}
			}
			e := runEnv(t)
			e.snapshot = m
			test(t, e)
		})
	}
}

// runEnv is newEnv with a base that can run commands: Debian's static
// busybox with its applets, users root, app (1000, in group staff) and
// nobody.
func runEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	img, err := testrig.BusyboxImage()
	require.NoError(t, err, "busybox-static is part of the rig: test/rig/install.sh")
	ref, err := name.ParseReference(e.base, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	e.baseImg = img
	return e
}

// runOpts are e.opts with the sandbox wired as build-push's main does.
func (e *env) runOpts(t *testing.T, dir string, out *bytes.Buffer, tags ...string) Options {
	o := e.opts(dir, tags...)
	self, err := os.Executable()
	require.NoError(t, err)
	o.SandboxInit = self
	o.Output = linesTo(out)
	o.BuildArgs = map[string]string{"BASE": e.base}
	o.TempDir = t.TempDir()
	o.Snapshot = e.snapshot
	return o
}

// buildFiles builds a context made of files with the run options,
// returning the result, the RUN output and the error.
func buildFiles(t *testing.T, e *env, files map[string]string, mutateOpts func(*Options)) (Result, string, error) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	var out bytes.Buffer
	o := e.runOpts(t, dir, &out, e.host+"/app:"+strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if mutateOpts != nil {
		mutateOpts(&o)
	}
	res, err := Run(context.Background(), o)
	return res, out.String(), err
}

func fileOf(t *testing.T, img v1.Image, p string) (fileInfo, bool) {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	var got fileInfo
	found := false
	for i := range layers {
		m := layerFiles(t, img, i)
		dir, base := filepath.Split(p)
		if _, ok := m[dir+".wh."+base]; ok {
			found = false
		}
		if f, ok := m[p]; ok {
			got, found = f, true
		}
	}
	return got, found
}

func TestRunSemantics(t *testing.T) {
	eachMethod(t, func(t *testing.T, e *env) {
		df := `ARG BASE
FROM ${BASE}
ARG GREETING=hello
ARG OVERRIDE=from-arg
ENV OVERRIDE=from-env
WORKDIR /work/dir
RUN echo "$GREETING $OVERRIDE $(pwd)" > out.txt
RUN ["/bin/sh", "-c", "echo exec-form >> /work/dir/out.txt"]
SHELL ["/bin/sh", "-ec"]
RUN echo "shell: $0" >> out.txt
RUN <<EOF
echo heredoc-line-1 >> out.txt
echo heredoc-line-2 >> out.txt
EOF
RUN <<'EOF'
#!/bin/sh
echo "shebang $HOME" >> /work/dir/out.txt
EOF
RUN cat <<'A' > a.txt && cat <<B > b.txt
literal $GREETING
A
expanded $GREETING
B
USER app
RUN id > /tmp/id.txt && echo "$HOME" >> /tmp/id.txt
USER 1000:0
RUN id -G > /tmp/groups.txt
`
		res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": df}, func(o *Options) { o.BuildArgs["GREETING"] = "hi" })
		require.NoError(t, err, out)
		img := pull(t, res.Tags[0])
		f, ok := fileOf(t, img, "work/dir/out.txt")
		require.True(t, ok)
		require.Equal(t, "hi from-env /work/dir\nexec-form\nshell: /bin/sh\nheredoc-line-1\nheredoc-line-2\nshebang /root\n", f.Content)
		a, _ := fileOf(t, img, "work/dir/a.txt")
		b, _ := fileOf(t, img, "work/dir/b.txt")
		require.Equal(t, "literal $GREETING\n", a.Content)
		require.Equal(t, "expanded hi\n", b.Content)
		id, _ := fileOf(t, img, "tmp/id.txt")
		require.Equal(t, "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n/home/app\n", id.Content)
		groups, _ := fileOf(t, img, "tmp/groups.txt")
		require.Equal(t, "0\n", groups.Content, "an explicit group is the only one")
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		require.NotContains(t, strings.Join(cf.Config.Env, " "), "GREETING", "ARGs are not persisted")
		// The history lists every ARG with the value the command sees: ENV's
		// when it set the same name (BuildKit's runCommandString).
		require.Contains(t, cf.History[len(cf.History)-1].CreatedBy, "RUN |2 GREETING=hi OVERRIDE=from-env /bin/sh -ec id -G")
		_, ok = fileOf(t, img, "dev/pipes/EOF")
		require.False(t, ok, "heredoc scripts never reach a layer")
	})
}

// TestRunChrooted: isolation chroot (what an unprivileged container
// permits) still gives /dev/null; the nodes made for it stay out of the
// layer.
func TestRunChrooted(t *testing.T) {
	eachMethod(t, func(t *testing.T, e *env) {
		df := "ARG BASE\nFROM ${BASE}\nRUN echo hidden > /dev/null && ls /dev > /devs && cat /dev/zero | head -c 3 | wc -c >> /devs\n"
		res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": df}, func(o *Options) { o.Isolation = "chroot" })
		require.NoError(t, err, out)
		img := pull(t, res.Tags[0])
		devs, ok := fileOf(t, img, "devs")
		require.True(t, ok)
		require.Equal(t, "full\nnull\nrandom\ntty\nurandom\nzero\n3\n", devs.Content)
		layers, err := img.Layers()
		require.NoError(t, err)
		for n := range layerFiles(t, img, len(layers)-1) {
			// /dev itself is a mount point the base lacks: BuildKit's
			// layer has it too; the nodes in it are not.
			require.False(t, strings.HasPrefix(n, "dev/") && n != "dev/", "%s: the nodes made for the command are not in the layer", n)
		}
	})
}

// TestScratchDir: by default a stage is unpacked in memory when /dev/shm
// has ample room (this rig: 24 GiB); scratch-dir puts it on disk.
func TestScratchDir(t *testing.T) {
	e := runEnv(t)
	files := map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN echo ok > /ok\n"}
	for _, c := range []struct {
		scratch  string
		inMemory bool
	}{{"", true}, {t.TempDir(), false}} {
		var logs bytes.Buffer
		_, out, err := buildFiles(t, e, files, func(o *Options) {
			o.ScratchDir = c.scratch
			o.Log = slog.New(slog.NewTextHandler(&logs, nil))
		})
		require.NoError(t, err, out)
		require.Equal(t, c.inMemory, strings.Contains(logs.String(), `msg="unpacking the stage in memory" dir=/dev/shm`), logs.String())
		if c.scratch != "" {
			entries, err := os.ReadDir(c.scratch)
			require.NoError(t, err)
			require.Empty(t, entries, "the unpacked stage is removed after the build")
		}
	}
}

func TestRunNetworkNone(t *testing.T) {
	e := runEnv(t)
	df := "ARG BASE\nFROM ${BASE}\nRUN --network=none ls /sys/class/net > /none\nRUN ls /sys/class/net > /default\n"
	res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": df}, func(o *Options) { o.Isolation = "namespaces" })
	require.NoError(t, err, out)
	img := pull(t, res.Tags[0])
	none, _ := fileOf(t, img, "none")
	require.Equal(t, "lo\n", none.Content, "RUN --network=none has only a loopback interface")
	def, _ := fileOf(t, img, "default")
	require.NotEqual(t, "lo\n", def.Content, "the default network is the host's")

	_, _, err = buildFiles(t, e, map[string]string{"Dockerfile": df}, func(o *Options) { o.Isolation = "chroot" })
	require.ErrorContains(t, err, "network none needs a network namespace")
}

// TestRunOutputCannotIssueWorkflowCommands: every output line is
// prefixed, so a command printing ::add-mask:: or ::set-output:: issues
// nothing on a GitHub runner.
func TestRunOutputCannotIssueWorkflowCommands(t *testing.T) {
	e := runEnv(t)
	_, out, err := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN echo '::stop-commands::x' && echo '::error::forged'\n"}, nil)
	require.NoError(t, err, out)
	require.Contains(t, out, "#3 | ::stop-commands::x\n#3 | ::error::forged\n")
	for _, l := range strings.Split(out, "\n") {
		require.False(t, strings.HasPrefix(l, "::"), l)
	}
}

func TestRunFailureNamesLineCommandAndOutput(t *testing.T) {
	e := runEnv(t)
	_, _, err := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN echo one && echo two >&2 && exit 3\n"}, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "Dockerfile:3: RUN /bin/sh -c echo one && echo two >&2 && exit 3: exit code 3")
	require.Contains(t, err.Error(), "one\ntwo")
}

func TestRunLayerHoldsWhatChanged(t *testing.T) {
	eachMethod(t, func(t *testing.T, e *env) {
		df := `ARG BASE
FROM ${BASE}
RUN mkdir -p /data/keep /data/gone /data/swap && echo k > /data/keep/f && echo g > /data/gone/f && echo s > /data/swap/old
COPY ctx.txt /data/
RUN rm -rf /data/gone && rm -rf /data/swap && mkdir /data/swap && echo n > /data/swap/new && cat /data/ctx.txt > /data/seen && ln /data/seen /data/hard && ln -s seen /data/soft && chmod 4755 /data/seen && chown 1000:50 /data/keep/f
`
		res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": df, "ctx.txt": "from context\n"}, nil)
		require.NoError(t, err, out)
		img := pull(t, res.Tags[0])
		layers, err := img.Layers()
		require.NoError(t, err)
		base, err := e.baseImg.Layers()
		require.NoError(t, err)
		last := layerFiles(t, img, len(layers)-1)
		require.Contains(t, last, "data/.wh.gone")
		require.Contains(t, last, "data/swap/.wh..wh..opq")
		require.Equal(t, "n\n", last["data/swap/new"].Content)
		// seen and hard are one file: the first in the tar holds the content.
		require.Equal(t, "from context\n", last["data/hard"].Content, "the RUN saw the COPY before it")
		require.Equal(t, "data/hard", last["data/seen"].Link)
		require.Equal(t, "seen", last["data/soft"].Link)
		require.Equal(t, int64(0o4755), last["data/hard"].Mode&0o7777)
		require.Equal(t, [2]int{1000, 50}, ids(last["data/keep/f"]))
		require.NotContains(t, last, "bin/busybox", "unchanged base files are not in the layer")
		require.Len(t, layers, len(base)+3)
	})
}

func TestRunCacheHitNeverUnpacksTheBase(t *testing.T) {
	e := runEnv(t)
	files := map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN seq 1 200 > /numbers\nCOPY app.txt /app/\nRUN wc -l /numbers /app/app.txt > /count\n", "app.txt": "app\n"}
	withCache := func(o *Options) { o.Cache = true; o.CacheRepo = e.host + "/cache" }
	first, out, err := buildFiles(t, e, files, withCache)
	require.NoError(t, err, out)
	require.Equal(t, 3, first.LayersBuilt)
	require.Equal(t, int64(1), first.BaseReads, "the first RUN unpacked the base")

	e.rec.reset()
	e.counter.Reset()
	second, out, err := buildFiles(t, e, files, withCache)
	require.NoError(t, err, out)
	require.LessOrEqual(t, e.counter.Snapshot().Kind(testrig.KindPing), 3, "one ping each for base reads, destination and cache reads, and writes: %s", e.counter.Snapshot())
	require.LessOrEqual(t, e.counter.Snapshot().Get(http.MethodGet, testrig.KindBlob), 1, "only the base's config is read: a hit needs its manifest alone: %s", e.counter.Snapshot())
	uploads := e.rec.uploadedDigests()
	require.Equal(t, 0, second.LayersBuilt)
	require.Equal(t, 3, second.CacheHits)
	require.Zero(t, second.BaseReads)
	baseLayers, err := e.baseImg.Layers()
	require.NoError(t, err)
	for _, l := range baseLayers {
		d, err := l.Digest()
		require.NoError(t, err)
		require.False(t, e.rec.fetched(d.String()), "the base layer was not downloaded")
	}
	require.Equal(t, first.Digest == second.Digest, false, "created times differ; the layers are the same")
	a, b := pull(t, first.Tags[0]), pull(t, second.Tags[0])
	la, err := a.Layers()
	require.NoError(t, err)
	lb, err := b.Layers()
	require.NoError(t, err)
	for i := range la {
		da, _ := la[i].Digest()
		db, _ := lb[i].Digest()
		require.Equal(t, da, db)
		require.NotContains(t, uploads, db.String(), "0 layer bytes moved: every layer is mounted or already there")
	}

	// Entries written before the manifest annotations still hit (their
	// config is read instead).
	cacheRepo, err := name.NewRepository(e.host+"/cache", name.Insecure)
	require.NoError(t, err)
	keys, err := remote.List(cacheRepo)
	require.NoError(t, err)
	for _, k := range keys {
		old, err := remote.Image(cacheRepo.Tag(k))
		require.NoError(t, err)
		ls, err := old.Layers()
		require.NoError(t, err)
		plain, err := mutate.AppendLayers(empty.Image, ls...)
		require.NoError(t, err)
		cf, err := plain.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.Created = v1.Time{Time: time.Now()}
		plain, err = mutate.ConfigFile(plain, cf)
		require.NoError(t, err)
		require.NoError(t, remote.Write(cacheRepo.Tag(k), plain))
	}
	third, out, err := buildFiles(t, e, files, withCache)
	require.NoError(t, err, out)
	require.Equal(t, 3, third.CacheHits)

	// A build arg the RUN sees changes its key; one it does not see
	// (declared after it) does not.
	files["Dockerfile"] = "ARG BASE\nFROM ${BASE}\nARG V=1\nRUN seq 1 200 > /numbers\n"
	_, out, err = buildFiles(t, e, files, withCache)
	require.NoError(t, err, out)
	fourth, out, err := buildFiles(t, e, files, func(o *Options) { withCache(o); o.BuildArgs["V"] = "2" })
	require.NoError(t, err, out)
	require.Equal(t, 1, fourth.LayersBuilt, "V is visible to the RUN: a miss")
}

func TestRunMounts(t *testing.T) {
	eachMethod(t, func(t *testing.T, e *env) {
		const canary = "canary-secret-3f9b1c"
		cacheDir := t.TempDir()
		df := `ARG BASE
FROM ${BASE} AS tools
RUN mkdir -p /opt/tool && echo tool-v1 > /opt/tool/version

FROM ${BASE}
RUN --mount=type=cache,target=/var/cache/app sh -c 'n=$(cat /var/cache/app/n 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/app/n; cp /var/cache/app/n /runs'
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /secret-check && stat -c %a:%u /run/secrets/token >> /secret-check
RUN --mount=type=secret,id=token,env=TOKEN echo "${#TOKEN}" >> /secret-check
RUN --mount=type=bind,source=src,target=/src cat /src/input.txt > /from-context
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/tool cat /tool/version > /from-stage
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/x && ls /scratch > /tmpfs-seen'
`
		files := map[string]string{"Dockerfile": df, "src/input.txt": "context input\n"}
		opts := func(o *Options) {
			o.CacheDir = cacheDir
			o.Secrets = map[string][]byte{"token": []byte(canary)}
		}
		var logs bytes.Buffer
		res, out, err := buildFiles(t, e, files, func(o *Options) {
			opts(o)
			o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		require.NoError(t, err, out)
		img := pull(t, res.Tags[0])
		for p, want := range map[string]string{"runs": "1\n", "secret-check": "20\n400:0\n20\n", "from-context": "context input\n", "from-stage": "tool-v1\n", "tmpfs-seen": "x\n"} {
			f, ok := fileOf(t, img, p)
			require.True(t, ok, p)
			require.Equal(t, want, f.Content, p)
		}
		for _, p := range []string{"var/cache/app/n", "run/secrets/token", "src/input.txt", "tool/version", "scratch/x"} {
			_, ok := fileOf(t, img, p)
			require.False(t, ok, "%s is a mount: it never reaches a layer", p)
		}
		// Nothing of the secret anywhere: layers, config, log, output.
		layers, err := img.Layers()
		require.NoError(t, err)
		for i := range layers {
			for n, f := range layerFiles(t, img, i) {
				require.NotContains(t, f.Content, canary, n)
			}
		}
		raw, err := img.RawConfigFile()
		require.NoError(t, err)
		require.NotContains(t, string(raw), canary)
		require.NotContains(t, logs.String(), canary)
		// The RUN output itself is masked by the platform layer's writer
		// (Options.Output; actions/build-push TestRunSecretNeverLeaks).

		// The cache persisted: a second build counts 2.
		res, out, err = buildFiles(t, e, files, opts)
		require.NoError(t, err, out)
		f, _ := fileOf(t, pull(t, res.Tags[0]), "runs")
		require.Equal(t, "2\n", f.Content)

		// A failing RUN that prints the secret: masked in the error (its
		// last output lines included).
		files["Dockerfile"] = "ARG BASE\nFROM ${BASE}\nRUN --mount=type=secret,id=token cat /run/secrets/token; echo; exit 1\n"
		_, _, err = buildFiles(t, e, files, opts)
		require.Error(t, err)
		require.NotContains(t, err.Error(), canary)
		require.Contains(t, err.Error(), "***")

		// A required secret that was not given names the input.
		files["Dockerfile"] = "ARG BASE\nFROM ${BASE}\nRUN --mount=type=secret,id=npmrc,required true\n"
		_, _, err = buildFiles(t, e, files, nil)
		require.ErrorContains(t, err, "Dockerfile:3: RUN --mount: type=secret,id=npmrc is required and no secret \"npmrc\" was given")
	})
}

// TestRunThatChangesNothingAddsAnEmptyLayer: BuildKit exports an empty
// layer for a RUN that changed nothing (test/differential
// run-changes-nothing checks it against BuildKit).
func TestRunThatChangesNothingAddsAnEmptyLayer(t *testing.T) {
	eachMethod(t, func(t *testing.T, e *env) {
		res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN mkdir -p /dev /proc /sys\nRUN true\n"}, nil)
		require.NoError(t, err, out)
		img := pull(t, res.Tags[0])
		layers, err := img.Layers()
		require.NoError(t, err)
		require.Len(t, layers, 3, "the base layer, the mount points, the empty layer")
		d, err := layers[2].DiffID()
		require.NoError(t, err)
		require.Equal(t, "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef", d.String(), "an empty tar")
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		last := cf.History[len(cf.History)-1]
		require.Equal(t, "RUN /bin/sh -c true", last.CreatedBy)
		require.False(t, last.EmptyLayer)
	})
}

// TestRunCacheMountSharedByConcurrentBuilds: two builds at once with one
// cache-dir take turns with the cache; both increments land.
func TestRunCacheMountSharedByConcurrentBuilds(t *testing.T) {
	e := runEnv(t)
	cacheDir := t.TempDir()
	df := "ARG BASE\nFROM ${BASE}\nARG N\nRUN --mount=type=cache,target=/c sh -c 'n=$(cat /c/n 2>/dev/null || echo 0); sleep 0.3; echo $((n+1)) > /c/n'\n"
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, out, err := buildFiles(t, e, map[string]string{"Dockerfile": df}, func(o *Options) {
				o.CacheDir = cacheDir
				o.BuildArgs["N"] = strconv.Itoa(i)
				o.Tags = []string{e.host + "/app:concurrent-" + strconv.Itoa(i)}
			})
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out)
			}
			errs <- err
		}()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	var n string
	entries, err := os.ReadDir(cacheDir)
	require.NoError(t, err)
	for _, d := range entries {
		if d.IsDir() {
			data, err := os.ReadFile(filepath.Join(cacheDir, d.Name(), "n"))
			require.NoError(t, err)
			n = string(data)
		}
	}
	require.Equal(t, "2\n", n)
}

func TestOnbuildTriggersRun(t *testing.T) {
	e := runEnv(t)
	res, out, err := buildFiles(t, e, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nONBUILD RUN echo triggered > /onbuild\n"}, nil)
	require.NoError(t, err, out)
	files := map[string]string{"Dockerfile": "FROM " + res.Tags[0] + "\nRUN cat /onbuild > /seen\n"}
	res, out, err = buildFiles(t, e, files, nil)
	require.NoError(t, err, out)
	f, ok := fileOf(t, pull(t, res.Tags[0]), "seen")
	require.True(t, ok)
	require.Equal(t, "triggered\n", f.Content)
	cf, err := pull(t, res.Tags[0]).ConfigFile()
	require.NoError(t, err)
	require.Empty(t, cf.Config.OnBuild, "triggers are not inherited")
}

// TestRunForeignPlatform builds linux/amd64 and linux/arm64 in one index:
// the arm64 stage's RUN executes through the host's binfmt_misc emulator
// (qemu-user-static, registered by test/rig/install.sh). A platform
// without one is refused naming it: internal/sandbox's TestCheckEmulation
// covers every such case on fake binfmt_misc trees.
func TestRunForeignPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("builds probes and runs qemu")
	}
	e := newEnv(t)
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		dir := t.TempDir()
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "probe"), "../../internal/sandbox/testdata/archprobe")
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		out, err := build.CombinedOutput()
		require.NoError(t, err, string(out))
		data, err := os.ReadFile(filepath.Join(dir, "probe"))
		require.NoError(t, err)
		img, err := mutate.AppendLayers(empty.Image, tarLayer(t, map[string]string{"probe": string(data), "out/": ""}))
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, err := name.ParseReference(e.host+"/base/probe:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, mutate.AppendManifests(empty.Index, adds...)))
	// The probe's file mode: tarLayer writes 0644, so the stage makes it
	// executable first with a RUN of its own — exec form, no shell.
	files := map[string]string{"Dockerfile": "FROM " + e.host + "/base/probe:1\nCOPY --chmod=0755 --from=" + e.host + "/base/probe:1 /probe /probe\nRUN [\"/probe\", \"/out/arch\"]\n"}

	res, out, err := buildFiles(t, e, files, func(o *Options) { o.Platforms = []string{"linux/amd64", "linux/arm64"} })
	if _, eerr := sandbox.CheckEmulation(t.TempDir(), sandbox.Platform{OS: "linux", Architecture: "arm64"}); eerr != nil {
		// Detected: no emulator for arm64 here (a kernel without
		// binfmt_misc, or none registered). The build says what to install.
		t.Logf("no arm64 emulator on this machine (%v): checking the error instead", eerr)
		require.ErrorIs(t, err, sandbox.ErrNoEmulator)
		require.ErrorContains(t, err, "RUN for linux/arm64 needs an emulator")
		require.ErrorContains(t, err, "qemu-user-static")
		return
	}
	require.NoError(t, err, "qemu-aarch64 is registered with binfmt_misc: the RUN runs\n%s", out)
	idx, err := remote.Index(mustRef(t, res.Tags[0]))
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		require.NoError(t, err)
		f, ok := fileOf(t, img, "out/arch")
		require.True(t, ok)
		machine := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[d.Platform.Architecture]
		require.Equal(t, "goarch="+d.Platform.Architecture+" machine="+machine+"\n", f.Content)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	require.NoError(t, err)
	return r
}
