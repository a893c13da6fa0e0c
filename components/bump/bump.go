// Package bump rewrites image references in GitOps manifests — kustomize
// images, workloads, Helm values, Flux HelmReleases, Argo CD Applications,
// marker comments — changing only the edited values, byte for byte, and
// lands the change in git: a commit pushed to the branch, retried on the
// new tip when someone else pushed first, never forced.
package bump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hoist-ci/hoist/internal/gitops"
	"github.com/hoist-ci/hoist/internal/manifests"
	"github.com/hoist-ci/hoist/internal/need"
	"github.com/hoist-ci/hoist/internal/redact"
)

// Modes.
const (
	ModeCommit      = "commit"
	ModePullRequest = "pull-request"
	ModeDryRun      = "dry-run"
)

// Options are bump's inputs (see internal/spec.Bump for their meaning).
type Options struct {
	// Images are `name=newref` entries.
	Images []string
	// Image with Tag and/or Digest is one more entry, the way build-push
	// outputs are wired: Image is a repository or a full reference.
	Image, Tag, Digest string
	Paths              []string
	ValuePaths         []string
	Pin                string
	Mode               string
	// Workspace is the current checkout: the target when Repository is
	// empty (its origin is cloned and pushed to), and the tree a dry run
	// reads.
	Workspace string
	// Repository is the URL of the GitOps repository; empty means the
	// current checkout's origin.
	Repository string
	// Branch to commit to; empty means the checkout's branch (or
	// DefaultBranch), or the remote's default branch.
	Branch        string
	DefaultBranch string
	Token         string
	Username      string
	SSHKey        string
	SSHKnownHosts string
	AuthorName    string
	AuthorEmail   string
	// SigningKey, when set, signs the commit: an armored OpenPGP private
	// key or an OpenSSH/PEM private key (detected); SigningKeyPassphrase
	// decrypts it.
	SigningKey           string
	SigningKeyPassphrase string
	// Message is a text/template; empty means the default message.
	Message      string
	MaxAttempts  int
	SourceCommit string
	TempDir      string
	Log          *slog.Logger
	// Labels go on the pull request (pull-request mode).
	Labels []string
	// Forge is auto, github or gitlab; APIURL its API root (empty: derived
	// from the repository URL).
	Forge  string
	APIURL string
	// Backoff and Sleep tune the retry delay (tests).
	Backoff time.Duration
	Sleep   func(context.Context, time.Duration) error
}

// Result is what bump changed (or, in a dry run, would change).
type Result struct {
	Changed        bool
	Files          []string
	Commit         string
	PullRequestURL string
	Message        string
	Diff           string
	Changes        []manifests.Change
	Attempts       int
	DryRun         bool
}

// Outputs returns the result as the tool's declared outputs.
func (r Result) Outputs() map[string]string {
	return map[string]string{
		"changed":          fmt.Sprint(r.Changed),
		"files":            strings.Join(r.Files, ","),
		"commit":           r.Commit,
		"pull-request-url": r.PullRequestURL,
	}
}

// Markdown summarizes the result for a job summary.
func (r Result) Markdown() string {
	var b strings.Builder
	switch {
	case !r.Changed:
		b.WriteString("### bump: nothing to change\n\nEvery reference already points at the requested image.\n")
		return b.String()
	case r.DryRun:
		b.WriteString("### bump (dry run): would change\n\n")
	default:
		fmt.Fprintf(&b, "### bump: committed `%.12s`\n\n", r.Commit)
	}
	b.WriteString("| file | line | field | old | new |\n|---|---|---|---|---|\n")
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "| %s | %d | %s | `%s` | `%s` |\n", c.File, c.Line, c.Field, c.Old, c.New)
	}
	return b.String()
}

// MessageData is what a message template sees.
type MessageData struct {
	// Image, Tag, Digest and Version (the tag, else the digest) are the
	// first images entry's.
	Image, Tag, Digest, Version string
	// Old and New are the first edited value before and after.
	Old, New     string
	SourceCommit string
	Updates      []manifests.Update
	Changes      []manifests.Change
	Files        []string
}

// DefaultMessage is used when no message is given.
const DefaultMessage = `chore(deploy): bump {{.Image}} to {{.Version}}`

func (o Options) updates() ([]manifests.Update, []manifests.ValuePath, error) {
	pin, err := manifests.ParsePin(o.Pin)
	if err != nil {
		return nil, nil, err
	}
	entries := append([]string(nil), o.Images...)
	if o.Image != "" {
		r, err := manifests.ParseRef(o.Image)
		if err != nil {
			return nil, nil, fmt.Errorf("image %q: %w", o.Image, err)
		}
		tag, digest := firstNonEmpty(o.Tag, r.Tag), firstNonEmpty(o.Digest, r.Digest)
		if tag == "" && digest == "" {
			return nil, nil, fmt.Errorf("image %q: give tag or digest (or a reference with one) to bump it to", o.Image)
		}
		ref := r.Repo()
		if tag != "" {
			ref += ":" + tag
		}
		if digest != "" {
			ref += "@" + digest
		}
		entries = append(entries, r.Repo()+"="+ref)
	} else if o.Tag != "" || o.Digest != "" {
		return nil, nil, fmt.Errorf("tag %q / digest %q given without image: set image to the repository they belong to", o.Tag, o.Digest)
	}
	if len(entries) == 0 {
		return nil, nil, fmt.Errorf("nothing to bump: give images (name=newref) or image with tag or digest")
	}
	var ups []manifests.Update
	for _, e := range entries {
		u, err := manifests.ParseUpdate(e, pin)
		if err != nil {
			return nil, nil, err
		}
		ups = append(ups, u)
	}
	var vps []manifests.ValuePath
	for _, e := range o.ValuePaths {
		vp, err := manifests.ParseValuePath(e)
		if err != nil {
			return nil, nil, err
		}
		vps = append(vps, vp)
	}
	return ups, vps, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Run bumps the images and lands the change.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Mode == "" {
		o.Mode = ModeCommit
	}
	if o.Mode != ModeCommit && o.Mode != ModeDryRun && o.Mode != ModePullRequest {
		return Result{}, fmt.Errorf("mode %q: want commit, pull-request or dry-run", o.Mode)
	}
	ups, vps, err := o.updates()
	if err != nil {
		return Result{}, err
	}
	mopts := manifests.Options{Updates: ups, ValuePaths: vps}
	tmpl, err := template.New("message").Option("missingkey=error").Parse(firstNonEmpty(o.Message, DefaultMessage))
	if err != nil {
		return Result{}, fmt.Errorf("message template: %w", err)
	}

	if o.Mode == ModeDryRun && o.Repository == "" {
		root, err := checkoutRoot(o.Workspace)
		if err != nil {
			return Result{}, err
		}
		edits, err := manifests.Plan(ctx, root, o.Paths, mopts)
		if err != nil {
			return Result{}, err
		}
		res := describe(edits, true)
		res.DryRun = true
		res.Message, err = message(tmpl, o.Message == "", ups, res, o.SourceCommit)
		return res, err
	}

	var signer gitops.Signer
	if o.SigningKey != "" && o.Mode != ModeDryRun {
		if signer, err = gitops.NewSigner(o.SigningKey, o.SigningKeyPassphrase); err != nil {
			return Result{}, fmt.Errorf("signing-key: %w; give an armored OpenPGP private key (gpg --armor --export-secret-keys KEYID) or an OpenSSH private key, and its passphrase in signing-key-passphrase", err)
		}
	}
	url, branch, auth, err := o.target()
	if err != nil {
		return Result{}, err
	}
	var (
		forge gitops.Forge
		prev  *gitops.PullRequest
		head  string
	)
	if o.Mode == ModePullRequest {
		if forge, err = gitops.NewForge(gitops.ForgeOptions{Kind: o.Forge, APIURL: o.APIURL, RepositoryURL: url, Token: o.Token}); err != nil {
			return Result{}, err
		}
		head = "hoist/bump/" + slug(ups[0].Label())
		if prev, err = forge.Find(ctx, head, branch); err != nil {
			return Result{}, err
		}
		if prev != nil && prev.State != "open" {
			// Its pull request was merged or closed: a new branch, never
			// the old one brought back.
			o.Log.Info("the bump branch's pull request is "+prev.State+"; using a new branch", "branch", head, "pull-request", prev.URL)
			head += "-" + slug(ups[0].Version())
			if prev, err = forge.Find(ctx, head, branch); err != nil {
				return Result{}, err
			}
			if prev != nil && prev.State != "open" {
				prev = nil
			}
		}
	}
	var planned Result
	edit := func(ctx context.Context, snap gitops.Snapshot, tip string) (map[string][]byte, string, error) {
		edits, err := manifests.PlanTree(ctx, manifests.Tree{Files: snap.Files, Links: snap.Links, More: snap.More, Read: snap.Read}, o.Paths, mopts)
		if err != nil {
			return nil, "", err
		}
		// The diff is shown by a dry run and a pull request only: on a large
		// bundle it costs more memory than the edit.
		planned = describe(edits, o.Mode != ModeCommit)
		msg, err := message(tmpl, o.Message == "", ups, planned, o.SourceCommit)
		if err != nil {
			return nil, "", err
		}
		planned.Message = msg
		if o.Mode == ModeDryRun || len(edits) == 0 {
			return nil, "", nil
		}
		o.Log.Info("edited", "files", len(edits), "changes", len(planned.Changes), "on", shortHash(tip))
		changed := map[string][]byte{}
		for _, e := range edits {
			changed[e.Path] = e.New
		}
		return changed, msg, nil
	}
	landed, err := gitops.Land(ctx, gitops.Options{
		URL: url, Branch: branch, Auth: auth,
		AuthorName: o.AuthorName, AuthorEmail: o.AuthorEmail, Signer: signer,
		MaxAttempts: o.MaxAttempts, Backoff: o.Backoff, Sleep: o.Sleep,
		Edit: edit, Log: o.Log, PushBranch: head,
	})
	planned.Attempts = landed.Attempts
	if err != nil {
		return planned, err
	}
	if o.Mode == ModeDryRun {
		planned.DryRun = true
		return planned, nil
	}
	planned.Commit = landed.Commit
	if o.Mode != ModePullRequest || !planned.Changed {
		return planned, nil
	}
	spec := gitops.PullRequestSpec{Title: strings.SplitN(planned.Message, "\n", 2)[0], Body: prBody(planned, o.SourceCommit), Head: head, Base: landed.Branch, Labels: o.Labels}
	var pr *gitops.PullRequest
	if prev != nil {
		pr, err = forge.Update(ctx, prev.Number, spec)
	} else {
		pr, err = forge.Create(ctx, spec)
	}
	if err != nil {
		return planned, err
	}
	planned.PullRequestURL = pr.URL
	return planned, nil
}

// slug makes a branch-name component of an image or version.
func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > 60 {
		out = out[:60]
	}
	return out
}

// prBody is the pull request's description: the changes and the diff.
func prBody(r Result, source string) string {
	var b strings.Builder
	b.WriteString("Image bump by hoist.\n\n| file | line | field | old | new |\n|---|---|---|---|---|\n")
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "| %s | %d | %s | `%s` | `%s` |\n", c.File, c.Line, c.Field, c.Old, c.New)
	}
	diff := r.Diff
	if len(diff) > 50000 {
		diff = diff[:50000] + "\n... (truncated)\n"
	}
	fmt.Fprintf(&b, "\n<details><summary>diff</summary>\n\n```diff\n%s```\n</details>\n", diff)
	if source != "" {
		fmt.Fprintf(&b, "\nSource commit: %s\n", source)
	}
	return b.String()
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func describe(edits []manifests.FileEdit, withDiff bool) Result {
	var r Result
	var diff strings.Builder
	for _, e := range edits {
		r.Files = append(r.Files, e.Path)
		r.Changes = append(r.Changes, e.Changes...)
		if withDiff {
			diff.WriteString(manifests.UnifiedDiff(e.Path, e.Old, e.New))
		}
	}
	sort.Strings(r.Files)
	r.Changed = len(edits) > 0
	r.Diff = diff.String()
	return r
}

func message(tmpl *template.Template, isDefault bool, ups []manifests.Update, r Result, source string) (string, error) {
	d := MessageData{SourceCommit: source, Updates: ups, Changes: r.Changes, Files: r.Files}
	if len(ups) > 0 {
		d.Image, d.Tag, d.Digest, d.Version = ups[0].Label(), ups[0].Tag, ups[0].Digest, ups[0].Version()
	}
	if len(r.Changes) > 0 {
		d.Old, d.New = r.Changes[0].Old, r.Changes[0].New
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, d); err != nil {
		return "", fmt.Errorf("message template: %w", err)
	}
	msg := strings.TrimSpace(b.String())
	if len(ups) > 1 && isDefault {
		var others []string
		for _, u := range ups[1:] {
			others = append(others, u.Label()+" to "+u.Version())
		}
		msg += ", " + strings.Join(others, ", ")
	}
	var body strings.Builder
	for _, c := range r.Changes {
		fmt.Fprintf(&body, "- %s:%d %s: %s -> %s\n", c.File, c.Line, c.Field, orEmpty(c.Old), orEmpty(c.New))
	}
	if body.Len() > 0 {
		msg += "\n\n" + body.String()
	}
	if source != "" {
		msg += "\nSource-Commit: " + source + "\n"
	}
	return msg, nil
}

func orEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

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
		return &githttp.BasicAuth{Username: firstNonEmpty(o.Username, "x-access-token"), Password: o.Token}, nil
	case o.Token != "":
		return nil, fmt.Errorf("token is given but repository %s is not an https URL: use an https URL with a token, or ssh-key for ssh", redact.URL(url))
	case o.SSHKey != "":
		keys, err := gitssh.NewPublicKeys(firstNonEmpty(o.Username, "git"), []byte(o.SSHKey), "")
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
