package gitops

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
)

// A large file the edit does not read is never fetched where the server
// filters (partial clone); one it reads is fetched on demand. Where the
// server does not filter, everything comes in the first fetch.
func TestLargeBlobsAreFetchedOnlyWhenRead(t *testing.T) {
	big := make([]byte, 2<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	files := map[string]string{
		"deploy/app.yaml":  "image: registry.example.com/app:1\n",
		"assets/big.bin":   string(big),
		"deploy/big.yaml":  "# large\nitems:\n" + strings.Repeat("  - image: registry.example.com/app:1\n", 60000),
		"deploy/link.yaml": "",
	}
	for _, server := range []struct{ filter, byHash bool }{{true, true}, {true, false}, {false, false}} {
		filter := server.filter
		base := t.TempDir()
		bare := gittest.BareRepo(t, base, "gitops", files)
		if filter {
			gittest.Git(t, bare, "config", "uploadpack.allowFilter", "true")
		}
		if server.byHash {
			gittest.Git(t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")
		}
		for _, url := range []string{"file://" + bare, gittest.Daemon(t, base) + "/gitops.git"} {
			tp, err := fetchTip(context.Background(), url, nil, "main")
			require.NoError(t, err)
			require.Equal(t, filter, tp.filter, url)
			commit, err := object.GetCommit(tp.s, tp.ref.Hash())
			require.NoError(t, err)
			tree, err := commit.Tree()
			require.NoError(t, err)
			snap, err := tp.snapshot(context.Background(), tree)
			require.NoError(t, err)
			require.True(t, snap.More["assets/big.bin"])
			require.Empty(t, snap.Files, "nothing read yet")

			present := func(name string) bool {
				e, err := tree.FindEntry(name)
				require.NoError(t, err)
				_, err = tp.s.EncodedObject(plumbing.BlobObject, e.Hash)
				return !errors.Is(err, plumbing.ErrObjectNotFound)
			}
			require.True(t, present("deploy/app.yaml"), "small files come with the tip")
			require.Equal(t, !filter, present("assets/big.bin"), "a large file comes only where the server does not filter")

			b, err := snap.File("deploy/app.yaml")
			require.NoError(t, err)
			require.Equal(t, files["deploy/app.yaml"], string(b))
			b, err = snap.File("deploy/big.yaml")
			require.NoError(t, err, "a large file the edit reads is fetched")
			require.Equal(t, files["deploy/big.yaml"], string(b))
			require.Equal(t, filter && server.byHash, !present("assets/big.bin"),
				"fetched on its own where the server allows it, else with the whole tip")
			_, err = snap.File("nope.yaml")
			require.Error(t, err)
		}
	}
}
