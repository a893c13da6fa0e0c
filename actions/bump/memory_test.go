package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

// maxRSS runs the bump binary under GNU time (Debian package time, which
// test/rig/install.sh installs) and returns its peak resident memory. The
// rusage of a direct child of the test would count the test's own memory:
// Go starts children with vfork.
func maxRSS(t *testing.T, bin, dir string, args ...string) int64 {
	t.Helper()
	timeBin, err := exec.LookPath("/usr/bin/time")
	require.NoError(t, err, "GNU time is needed (apt-get install -y time; test/rig/install.sh installs it)")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"-f", "maxrss-kib=%M", bin}, append(args, "--images", "registry.example.com/team/app=2.0.0", "--author", "ci <ci@example.com>")...)
	cmd := exec.CommandContext(ctx, timeBin, full...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	i := strings.LastIndex(string(out), "maxrss-kib=")
	require.GreaterOrEqual(t, i, 0, "%s", out)
	kib, err := strconv.ParseInt(strings.TrimSpace(string(out[i+len("maxrss-kib="):])), 10, 64)
	require.NoError(t, err, "%s", out)
	return kib << 10
}

const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/app:1.0.0\n"

// TestLargeFilesCostLittleMemory: a 50 MB file outside paths costs
// nothing where the git server filters (partial clone), and editing a
// large manifest bundle costs a small multiple of its size.
func TestLargeFilesCostLittleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a 50 MB repository")
	}
	bin := buildBinary(t)
	base := t.TempDir()

	// A bundle of 20,000 Deployments (3.8 MB), every one edited.
	var bundle strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&bundle, "---\n%s", strings.Replace(deployment, "name: app\n", fmt.Sprintf("name: app-%05d\n", i), 1))
	}
	size := int64(bundle.Len())
	big := make([]byte, 50<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	small := gittest.BareRepo(t, base, "small", map[string]string{"deploy/app.yaml": deployment})
	large := gittest.BareRepo(t, base, "large", map[string]string{
		"deploy/app.yaml": deployment, "bundle/all.yaml": bundle.String(), "assets/big.bin": string(big),
	})
	for _, bare := range []string{small, large} {
		// Partial clone, as GitHub and GitLab serve it.
		gittest.Git(t, bare, "config", "uploadpack.allowFilter", "true")
		gittest.Git(t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")
	}
	// git daemon serves them: with a file:// URL git's upload-pack would be
	// a child of bump, counted in its peak.
	daemon := gittest.Daemon(t, base)
	args := func(bare, paths string) []string {
		return []string{"--repository", daemon + "/" + filepath.Base(bare), "--branch", "main", "--paths", paths}
	}

	rssSmall := maxRSS(t, bin, t.TempDir(), args(small, "deploy")...)
	rssLarge := maxRSS(t, bin, t.TempDir(), args(large, "deploy")...)
	t.Logf("50 MB file outside paths: max RSS %d MiB without it, %d MiB with it", rssSmall>>20, rssLarge>>20)
	require.Less(t, rssLarge, rssSmall+16<<20, "the 50 MB file was not held")
	require.Equal(t, strings.Replace(deployment, "1.0.0", "2.0.0", 1), gittest.Show(t, large, "main", "deploy/app.yaml")+"\n")

	rssCommit := maxRSS(t, bin, t.TempDir(), args(large, "bundle")...)
	work := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(work, "bundle"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "bundle", "all.yaml"), []byte(bundle.String()), 0o644))
	rssDry := maxRSS(t, bin, work, "--mode", "dry-run", "--paths", "bundle")
	t.Logf("editing a %.1f MB bundle (20,000 documents; a 50 MB file beside it): max RSS %d MiB (commit), %d MiB (dry run, diff printed); %d MiB for a one-line file",
		float64(size)/1e6, rssCommit>>20, rssDry>>20, rssSmall>>20)
	// Live heap is about 6 times the file (its bytes, the edited bytes,
	// the clone's copy, the changes); the runtime's headroom doubles it.
	for _, rss := range []int64{rssCommit, rssDry} {
		require.Less(t, rss-rssSmall, 20*size, "a small multiple of the file's size")
	}
	require.Contains(t, gittest.Show(t, large, "main", "bundle/all.yaml"), "name: app-19999\nspec:")
}
