package gitops

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/require"

	"github.com/hoist-ci/hoist/internal/gitops/gittest"
	"github.com/hoist-ci/hoist/internal/redact"
)

// appendLine is an edit that appends a line to a file.
func appendLine(file, line string) EditFunc {
	return func(ctx context.Context, snap Snapshot, tip string) (map[string][]byte, string, error) {
		b, err := snap.File(file)
		if err != nil {
			return nil, "", err
		}
		if strings.Contains(string(b), line+"\n") {
			return nil, "", nil
		}
		return map[string][]byte{file: append(append([]byte(nil), b...), []byte(line+"\n")...)}, "add " + line, nil
	}
}

func TestLandRetriesOnMovedBranch(t *testing.T) {
	base := t.TempDir()
	bare := gittest.BareRepo(t, base, "gitops", map[string]string{"list.txt": "seed\n"})
	for _, tc := range []struct{ name, url string }{
		{"file", "file://" + bare},
		{"git daemon", gittest.Daemon(t, base) + "/gitops.git"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			mine := appendLine("list.txt", "mine-"+tc.name)
			edit := func(ctx context.Context, snap Snapshot, tip string) (map[string][]byte, string, error) {
				if calls.Add(1) == 1 {
					// Someone else lands first, between our clone and our push.
					_, err := Land(ctx, Options{URL: tc.url, Branch: "main", AuthorName: "other", AuthorEmail: "o@example.com", Edit: appendLine("list.txt", "theirs-"+tc.name)})
					require.NoError(t, err)
				}
				return mine(ctx, snap, tip)
			}
			var slept []time.Duration
			res, err := Land(context.Background(), Options{
				URL: tc.url, Branch: "main", AuthorName: "hoist", AuthorEmail: "hoist@example.com",
				Edit:  edit,
				Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil },
			})
			require.NoError(t, err)
			require.True(t, res.Changed)
			require.Equal(t, 2, res.Attempts)
			require.Len(t, slept, 1)
			content := gittest.Show(t, bare, "main", "list.txt")
			require.Contains(t, content, "theirs-"+tc.name)
			require.Contains(t, content, "mine-"+tc.name)
			require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", "main"))
			// Linear: no merge commits.
			require.Empty(t, gittest.Git(t, bare, "rev-list", "--merges", "main"))
			author := gittest.Git(t, bare, "log", "-1", "--format=%an <%ae>|%s", "main")
			require.Equal(t, "hoist <hoist@example.com>|add mine-"+tc.name, author)
		})
	}
}

func TestLandNoChangeNoCommit(t *testing.T) {
	base := t.TempDir()
	bare := gittest.BareRepo(t, base, "gitops", map[string]string{"list.txt": "seed\n"})
	before := gittest.Git(t, bare, "rev-parse", "main")
	res, err := Land(context.Background(), Options{URL: bare, Branch: "main", AuthorName: "h", AuthorEmail: "h@e", Edit: appendLine("list.txt", "seed")})
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Empty(t, res.Commit)
	require.Equal(t, before, gittest.Git(t, bare, "rev-parse", "main"))
}

func TestLandGivesUpAfterMaxAttempts(t *testing.T) {
	base := t.TempDir()
	bare := gittest.BareRepo(t, base, "gitops", map[string]string{"list.txt": "seed\n"})
	url := "file://" + bare
	n := 0
	edit := func(ctx context.Context, snap Snapshot, tip string) (map[string][]byte, string, error) {
		n++
		_, err := Land(ctx, Options{URL: url, Branch: "main", AuthorName: "o", AuthorEmail: "o@e", Edit: appendLine("list.txt", fmt.Sprint("theirs-", n))})
		require.NoError(t, err)
		return appendLine("list.txt", "mine")(ctx, snap, tip)
	}
	_, err := Land(context.Background(), Options{URL: url, Branch: "main", AuthorName: "h", AuthorEmail: "h@e", MaxAttempts: 3, Edit: edit,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	require.ErrorContains(t, err, "3 attempts, every push rejected because the branch kept moving (raise max-attempts)")
	require.ErrorIs(t, err, ErrRejected)
	require.Equal(t, 3, n)
	require.NotContains(t, gittest.Show(t, bare, "main", "list.txt"), "mine")
}

func TestLandOtherErrorsAreNotRetried(t *testing.T) {
	res, err := Land(context.Background(), Options{URL: "file:///nonexistent/repo.git", Branch: "main", Edit: appendLine("x", "y")})
	require.Error(t, err)
	require.Equal(t, 1, res.Attempts)
	require.Contains(t, err.Error(), "cloning file:///nonexistent/repo.git")
}

func TestRedact(t *testing.T) {
	require.Equal(t, "https://***@example.com/a.git", redact.URL("https://user:s3cret@example.com/a.git"))
	require.Equal(t, "https://example.com/a@b.git", redact.URL("https://example.com/a@b.git"))
	require.Equal(t, "/srv/a.git", redact.URL("/srv/a.git"))
}

// TestLandPushesOnlyNewObjectsOnce edits identical files in identical
// directories (same new blobs and trees) and checks the remote is whole.
func TestLandPushesOnlyNewObjectsOnce(t *testing.T) {
	base := t.TempDir()
	bare := gittest.BareRepo(t, base, "gitops", map[string]string{"x/f.txt": "seed\n", "y/f.txt": "seed\n", "z/other.txt": "kept\n"})
	edit := func(ctx context.Context, snap Snapshot, tip string) (map[string][]byte, string, error) {
		return map[string][]byte{"x/f.txt": []byte("new\n"), "y/f.txt": []byte("new\n")}, "same edit twice", nil
	}
	res, err := Land(context.Background(), Options{URL: "file://" + bare, Branch: "main", AuthorName: "h", AuthorEmail: "h@example.com", Edit: edit})
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, res.Commit, gittest.Git(t, bare, "rev-parse", "main"))
	gittest.Git(t, bare, "fsck", "--strict", "--no-dangling")
	require.Equal(t, "new", gittest.Show(t, bare, "main", "y/f.txt"))
	require.Equal(t, "kept", gittest.Show(t, bare, "main", "z/other.txt"))
}

// TestPushRefusesAMovedBranch: the update is a compare-and-swap on the
// remote's ref; a stale base is reported as ErrRejected, nothing written.
func TestPushRefusesAMovedBranch(t *testing.T) {
	bare := gittest.BareRepo(t, t.TempDir(), "gitops", map[string]string{"list.txt": "seed\n"})
	stale := plumbing.NewHash(gittest.Git(t, bare, "rev-parse", "main"))
	_, err := Land(context.Background(), Options{URL: "file://" + bare, Branch: "main", AuthorName: "h", AuthorEmail: "h@example.com", Edit: appendLine("list.txt", "a")})
	require.NoError(t, err)
	moved := gittest.Git(t, bare, "rev-parse", "main")
	err = push(context.Background(), "file://"+bare, nil, plumbing.NewBranchReferenceName("main"), stale, stale, false, memory.NewStorage(), nil)
	require.ErrorIs(t, err, ErrRejected)
	require.Equal(t, moved, gittest.Git(t, bare, "rev-parse", "main"))
}
