package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/spec"
)

const hostWorkflow = "examples/github/retag-host.yml"

// releaseArchives builds the release archives of this commit the way the
// release workflow does (make dist, stamped spec.Version, the host's
// architecture only) into <dir>/v<version>/, the layout of a GitHub
// release's download URL, and returns dir.
func releaseArchives(t *testing.T, r *rig) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	dir := t.TempDir()
	dist := filepath.Join(dir, "v"+spec.Version)
	// The build keeps this process's environment (and so its build cache).
	out, err := command(ctx, r.root, os.Environ(), r.tools["make"], "--no-print-directory", "dist",
		"VERSION="+spec.Version, "DIST="+dist, "DIST_ARCHES="+runtime.GOARCH)
	require.NoError(t, err, "make dist:\n%s", out)
	require.FileExists(t, filepath.Join(dist, hostArchive()))
	require.FileExists(t, filepath.Join(dist, "checksums.txt"))

	// The archive holds what the image's /usr/local/bin holds: the
	// multi-call binary and a link to it per tool.
	f, err := os.Open(filepath.Join(dist, hostArchive()))
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	entries := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		entries[strings.TrimPrefix(h.Name, "./")] = h.Linkname
	}
	require.Contains(t, entries, "hoist")
	for _, tool := range spec.Tools() {
		require.Equal(t, "hoist", entries[tool.Name], "the archive has no link %s -> hoist (Makefile DIST_TOOLS)", tool.Name)
	}
	return dir
}

func hostArchive() string {
	return fmt.Sprintf("hoist_%s_linux_%s.tar.gz", spec.Version, runtime.GOARCH)
}

// TestHostActionUnderAct runs examples/github/retag-host.yml under act with
// the host platform (-P ubuntu-latest=-self-hosted: the job runs on this
// machine, no container): the host action downloads this commit's release
// archive from a file:// release URL, checks its sha256, installs it into
// the runner's tool cache and runs retag there. A second run with the
// archives gone runs from the cache.
func TestHostActionUnderAct(t *testing.T) {
	if testing.Short() {
		t.Skip("runs act and builds the release archives; skipped in -short mode")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	r := newToolRig(t, root, "act", "git", "go", "make", "curl", "tar", "sha256sum")
	releases := releaseArchives(t, r)

	ws := t.TempDir()
	r.copyFiles(t, ws, map[string]string{
		spec.HostActionPath(spec.Retag()): spec.HostActionPath(spec.Retag()),
		spec.HostScript:                   spec.HostScript,
		hostWorkflow:                      hostWorkflow,
		githubTagEvent:                    githubTagEvent,
	})
	r.gitRepo(t, ws, "https://github.com/acme/app.git")
	var event struct {
		After string `json:"after"`
	}
	data, err := os.ReadFile(filepath.Join(ws, githubTagEvent))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &event))
	// act's tool cache (RUNNER_TOOL_CACHE) is <action-cache-path>/tool_cache.
	actCache := filepath.Join(t.TempDir(), "act-cache")
	toolDir := filepath.Join(actCache, "tool_cache", "hoist", spec.Version, runtime.GOARCH)

	run := func(t *testing.T) string {
		reg, digest := pushSource(t, event.After[:githubShortSHA])
		repo := reg.Host + "/demo/app"
		ctx, cancel := context.WithTimeout(t.Context(), pipelineTimeout)
		defer cancel()
		args := []string{
			"push",
			"-W", hostWorkflow,
			"-e", githubTagEvent,
			"-P", "ubuntu-latest=-self-hosted",
			"--no-cache-server",
			"--action-cache-path", actCache,
			"--env", "HOIST_RELEASE_URL=file://" + releases,
			"--var", "IMAGE=" + repo,
			"--var", "INSECURE_REGISTRIES=" + reg.Host,
			"--secret", "GITHUB_TOKEN=" + tokenCanary,
		}
		start := time.Now()
		out, err := r.run(ctx, ws, "act", args...)
		t.Logf("act ran the host action in %s", time.Since(start).Round(time.Millisecond))
		requireRun(t, "act "+strings.Join(args, " "), out, err)
		requireTags(t, repo, wantTags, digest)
		require.Contains(t, out, "released digest="+digest, "the step after the host action did not get its digest output")
		require.NotContains(t, out, tokenCanary, "the GITHUB_TOKEN secret was printed")
		return out
	}

	t.Run("installs", func(t *testing.T) {
		out := run(t)
		require.Contains(t, out, "hoist "+spec.Version+" ("+runtime.GOARCH+"): installed file://"+releases)
		require.FileExists(t, toolDir+".complete")
		version, err := command(t.Context(), ws, r.env, filepath.Join(toolDir, "retag"), "--version")
		require.NoError(t, err, version)
		require.Equal(t, spec.Version+"\n", version, "the release binary is not stamped with the release version")
	})
	t.Run("from the tool cache", func(t *testing.T) {
		require.NoError(t, os.RemoveAll(filepath.Join(releases, "v"+spec.Version)))
		out := run(t)
		require.Contains(t, out, "hoist "+spec.Version+" ("+runtime.GOARCH+"): from the tool cache "+toolDir)
	})
}

// TestRunOnHostRefuses: the script behind the host actions installs nothing
// from an archive whose checksum does not match, and says what is missing.
func TestRunOnHostRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release archives; skipped in -short mode")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	r := newToolRig(t, root, "go", "make", "curl", "tar", "sha256sum", "sh")
	releases := releaseArchives(t, r)
	dist := filepath.Join(releases, "v"+spec.Version)
	script := filepath.Join(root, spec.HostScript)

	hostRun := func(t *testing.T, env ...string) (string, string, error) {
		cache := t.TempDir()
		env = append(append([]string{}, r.env...), append([]string{
			"HOIST_VERSION=" + spec.Version,
			"HOIST_RELEASE_URL=file://" + releases,
			"RUNNER_TOOL_CACHE=" + cache,
		}, env...)...)
		out, err := command(t.Context(), t.TempDir(), env, r.tools["sh"], script, "retag", "--version")
		return out, filepath.Join(cache, "hoist", spec.Version, runtime.GOARCH), err
	}

	t.Run("runs the tool", func(t *testing.T) {
		out, dir, err := hostRun(t)
		require.NoError(t, err, out)
		require.True(t, strings.HasSuffix(out, "\n"+spec.Version+"\n"), out)
		require.FileExists(t, dir+".complete")
	})
	t.Run("unknown version", func(t *testing.T) {
		out, dir, err := hostRun(t, "HOIST_VERSION=9.9.9")
		require.Error(t, err)
		require.Contains(t, out, "downloading file://"+releases+"/v9.9.9/hoist_9.9.9_linux_"+runtime.GOARCH+".tar.gz failed: is v9.9.9 released")
		require.NoDirExists(t, filepath.Dir(filepath.Dir(dir))+"/9.9.9/"+runtime.GOARCH)
	})
	t.Run("tampered archive", func(t *testing.T) {
		archive := filepath.Join(dist, hostArchive())
		data, err := os.ReadFile(archive)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(archive, append(data, 0), 0o644))
		sum := sha256.Sum256(append(data, 0))
		out, dir, err := hostRun(t)
		require.Error(t, err)
		require.Contains(t, out, hostArchive()+" has sha256 "+hex.EncodeToString(sum[:])+", but checksums.txt says ")
		require.Contains(t, out, "not installed")
		require.NoDirExists(t, dir)
		require.NoFileExists(t, dir+".complete")
	})
}
