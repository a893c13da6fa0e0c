package buildcontext

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// git://host/org/repo.git#<ref>#<commit>, as kaniko reads it: the
// repository is cloned over https (GIT_PULL_METHOD=http for plain http;
// hoist also takes GIT_PULL_METHOD=git for the git protocol of a
// `git daemon`), at <ref> (a branch or tag, full or short, or a commit),
// then <commit> is checked out. Credentials come from GIT_TOKEN, or
// GIT_USERNAME and GIT_PASSWORD, or the URL's user info; GIT_SSL_CAINFO
// names a CA bundle for a server with a private certificate. The clone is
// shallow (the ref's last commit; the commit alone when the server allows
// fetching it, else the ref's history), and its .git directory is removed:
// the build sees the files, as with Docker's git contexts, and no
// credential a remote URL holds can reach an image.

func fetchGit(ctx context.Context, src Source, c *Context, o Options) error {
	parts := strings.Split(src.Location, "#")
	if len(parts) > 3 || parts[0] == "" {
		return errors.New("want git://<host>/<repository>[#<ref>[#<commit>]]")
	}
	method := strings.ToLower(firstSet(o.Getenv, "GIT_PULL_METHOD"))
	switch method {
	case "":
		method = "https"
	case "https", "http", "git":
	default:
		return fmt.Errorf("GIT_PULL_METHOD=%s: use https (the default), http or git", method)
	}
	repoURL := method + "://" + parts[0]
	var ref, commit string
	if len(parts) > 1 {
		ref = parts[1]
	}
	if len(parts) > 2 {
		commit = parts[2]
	}
	if plumbing.IsHash(ref) && commit == "" {
		ref, commit = "", ref
	}
	var err error
	if commit != "" && !plumbing.IsHash(commit) {
		return fmt.Errorf("%q is not a commit SHA (40 hexadecimal digits)", commit)
	}
	auth := gitAuth(o.Getenv)
	if method == "git" {
		auth = nil
	}
	var caBundle []byte
	if f := o.Getenv("GIT_SSL_CAINFO"); f != "" {
		if caBundle, err = os.ReadFile(f); err != nil {
			return fmt.Errorf("GIT_SSL_CAINFO: %w", err)
		}
	}
	shown := redactURL(repoURL)

	clone := func(depth int, name plumbing.ReferenceName) (*git.Repository, error) {
		_ = os.RemoveAll(c.Dir)
		if err := os.Mkdir(c.Dir, 0o755); err != nil {
			return nil, err
		}
		return git.PlainCloneContext(ctx, c.Dir, false, &git.CloneOptions{
			URL: repoURL, Auth: auth, Depth: depth, ReferenceName: name, CABundle: caBundle,
			SingleBranch: name != "", Tags: git.NoTags, NoCheckout: commit != "",
		})
	}
	var repo *git.Repository
	names := refCandidates(ref)
	for i, name := range names {
		repo, err = clone(1, name)
		if err == nil || !errors.Is(err, plumbing.ErrReferenceNotFound) && !isNoMatchingRef(err) || i == len(names)-1 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cloning %s%s: %w", shown, refNote(ref), gitHint(err))
	}
	if commit != "" {
		hash := plumbing.NewHash(commit)
		if head, herr := repo.Head(); herr != nil || head.Hash() != hash {
			if ferr := fetchCommit(ctx, repo, commit, auth, caBundle); ferr != nil {
				o.Log.Debug("the server does not serve the commit alone: cloning the ref's history", "error", ferr.Error())
				if repo, err = clone(0, refName(repo)); err != nil {
					return fmt.Errorf("cloning %s%s: %w", shown, refNote(ref), gitHint(err))
				}
			}
		}
		wt, err := repo.Worktree()
		if err != nil {
			return err
		}
		if err := wt.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
			return fmt.Errorf("checking out %s in %s%s: %w", commit, shown, refNote(ref), err)
		}
	}
	if err := os.RemoveAll(filepath.Join(c.Dir, ".git")); err != nil {
		return err
	}
	return measure(c, o.MaxSize)
}

// refCandidates are the references a ref may name: itself when full, else
// a branch then a tag of that name; none means the remote's HEAD.
func refCandidates(ref string) []plumbing.ReferenceName {
	switch {
	case ref == "":
		return []plumbing.ReferenceName{""}
	case strings.HasPrefix(ref, "refs/"):
		return []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	}
	return []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
}

// refName is the reference a repository was cloned at.
func refName(repo *git.Repository) plumbing.ReferenceName {
	if head, err := repo.Reference(plumbing.HEAD, false); err == nil && head.Type() == plumbing.SymbolicReference {
		return head.Target()
	}
	return ""
}

func isNoMatchingRef(err error) bool {
	return err != nil && strings.Contains(err.Error(), "couldn't find remote ref")
}

// fetchCommit fetches one commit by its SHA (servers with
// uploadpack.allowReachableSHA1InWant, GitHub, GitLab and Azure Repos).
func fetchCommit(ctx context.Context, repo *git.Repository, commit string, auth transport.AuthMethod, caBundle []byte) error {
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", Auth: auth, Depth: 1, Tags: git.NoTags, CABundle: caBundle,
		RefSpecs: []config.RefSpec{config.RefSpec(commit + ":refs/hoist/context")},
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = repo.CommitObject(plumbing.NewHash(commit))
	return err
}

// gitAuth: GIT_TOKEN (as the user name, kaniko's way), else GIT_USERNAME
// and GIT_PASSWORD; nil leaves the URL's own user info, if any.
func gitAuth(getenv func(string) string) transport.AuthMethod {
	user, pass := getenv("GIT_USERNAME"), getenv("GIT_PASSWORD")
	if token := getenv("GIT_TOKEN"); token != "" {
		user, pass = token, ""
	}
	if user == "" && pass == "" {
		return nil
	}
	if user == "" {
		user = "git"
	}
	return &githttp.BasicAuth{Username: user, Password: pass}
}

func refNote(ref string) string {
	if ref == "" {
		return ""
	}
	return " at " + ref
}

func gitHint(err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w: set GIT_TOKEN, or GIT_USERNAME and GIT_PASSWORD", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%w (or the credentials may not read it)", err)
	case errors.Is(err, plumbing.ErrReferenceNotFound), isNoMatchingRef(err):
		return fmt.Errorf("%w: name a branch or tag the repository has (refs/heads/<branch>, refs/tags/<tag>)", err)
	}
	return err
}

// measure counts what a checkout holds and fails past the size limit.
func measure(c *Context, max int64) error {
	return filepath.WalkDir(c.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == c.Dir {
			return nil
		}
		c.Files++
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				c.Bytes += fi.Size()
			}
		}
		if c.Bytes > max {
			return fmt.Errorf("%w (%d bytes unpacked): raise context-max-size or build from a smaller repository", ErrTooLarge, max)
		}
		return nil
	})
}
