package bump

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hoist-ci/hoist/internal/need"
	"github.com/hoist-ci/hoist/internal/redact"
)

// checkoutRoot returns the top of the git work tree holding dir, or dir.
func checkoutRoot(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("no workspace directory: run inside the checkout or give repository")
	}
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return dir, nil
	}
	wt, err := repo.Worktree()
	if err != nil {
		return dir, nil
	}
	return wt.Filesystem.Root(), nil
}

// target resolves the repository URL, branch and credentials.
func (o Options) target() (string, string, transport.AuthMethod, error) {
	url, branch := o.Repository, o.Branch
	if url == "" {
		if o.Workspace == "" {
			return "", "", nil, errors.New("no repository given and no checkout to take it from: set repository")
		}
		repo, err := git.PlainOpenWithOptions(o.Workspace, &git.PlainOpenOptions{DetectDotGit: true})
		if err != nil {
			return "", "", nil, fmt.Errorf("no repository given and %s is not a git checkout (%v): set repository", o.Workspace, err)
		}
		remote, err := repo.Remote("origin")
		if err != nil || len(remote.Config().URLs) == 0 {
			return "", "", nil, fmt.Errorf("no repository given and the checkout in %s has no origin remote: set repository", o.Workspace)
		}
		url = remote.Config().URLs[0]
		if branch == "" {
			if head, err := repo.Head(); err == nil && head.Name().IsBranch() {
				branch = head.Name().Short()
			}
		}
		if branch == "" {
			branch = o.DefaultBranch
		}
	}
	auth, err := o.auth(url)
	if err != nil {
		return "", "", nil, err
	}
	if o.Token != "" {
		url = stripUserinfo(url)
	}
	if !strings.Contains(url, "://") && !strings.Contains(url, "@") {
		if abs, err := filepath.Abs(url); err == nil {
			url = abs
		}
	}
	return url, branch, auth, nil
}

func stripUserinfo(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.IndexByte(rest, '@'); at >= 0 && !strings.Contains(rest[:at], "/") {
			return u[:i+3] + rest[at+1:]
		}
	}
	return u
}

func (o Options) auth(url string) (transport.AuthMethod, error) {
	isHTTP := strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")
	switch {
	case strings.HasPrefix(o.Token, "$"):
		return nil, need.Wrap(need.RepositoryToken, "token", errors.New("token starts with $: an unexpanded CI/CD variable; define it or set token"))
	case o.Token != "" && isHTTP:
		return &githttp.BasicAuth{Username: cmp.Or(o.Username, "x-access-token"), Password: o.Token}, nil
	case o.Token != "":
		return nil, fmt.Errorf("token is given but repository %s is not an https URL: use an https URL with a token, or ssh-key for ssh", redact.URL(url))
	case o.SSHKey != "":
		keys, err := gitssh.NewPublicKeys(cmp.Or(o.Username, "git"), []byte(o.SSHKey), "")
		if err != nil {
			return nil, fmt.Errorf("ssh-key: not a usable private key (PEM or OpenSSH format, without passphrase): %v", redactKeyError(err))
		}
		if o.SSHKnownHosts != "" {
			cb, err := knownHostsCallback(o.TempDir, o.SSHKnownHosts)
			if err != nil {
				return nil, err
			}
			keys.HostKeyCallback = cb
		}
		return keys, nil
	}
	return nil, nil
}

func redactKeyError(err error) string {
	// Parsing errors never quote the key, but keep only the first line.
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func knownHostsCallback(tmp, content string) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp(tmp, "known_hosts-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf("ssh-known-hosts: not in known_hosts format: %w", err)
	}
	return cb, nil
}
