// Package bump rewrites image references in GitOps manifests — kustomize
// images, workloads, Helm values, Flux HelmReleases, Argo CD Applications,
// marker comments — changing only the edited values, byte for byte, and
// lands the change in git: a commit pushed to the branch, retried on the
// new tip when someone else pushed first, never forced.
package bump

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hoist-ci/hoist/internal/gitops"
	"github.com/hoist-ci/hoist/internal/manifests"
)

// Modes.
const (
	ModeCommit      = "commit"
	ModePullRequest = "pull-request"
	ModeDryRun      = "dry-run"
)

// Options are bump's inputs (see internal/spec.Bump for their meaning).
type Options struct {
	// Images are `name=newref` entries or bare references
	// (repo:tag, repo@digest, repo:tag@digest: repo=itself).
	Images []string
	// ImagesFrom are files or globs, relative to Workspace, whose every
	// non-empty line is one more Images entry (build-push's ref-file).
	ImagesFrom []string
	// AllowNoMatch turns what matched nothing — a paths glob or an
	// ImagesFrom item that selects no file, an image no selected file
	// references — from an error into a warning.
	AllowNoMatch bool
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

func (o Options) updates() ([]manifests.Update, []manifests.ValuePath, error) {
	pin, err := manifests.ParsePin(o.Pin)
	if err != nil {
		return nil, nil, err
	}
	var entries []string
	for _, e := range o.Images {
		if strings.TrimSpace(e) == "" {
			continue
		}
		e, err := manifests.Entry(e)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(entries, e) {
			entries = append(entries, e)
		}
	}
	if o.Image != "" {
		r, err := manifests.ParseRef(o.Image)
		if err != nil {
			return nil, nil, fmt.Errorf("image %q: %w", o.Image, err)
		}
		tag, digest := cmp.Or(o.Tag, r.Tag), cmp.Or(o.Digest, r.Digest)
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
	if len(o.ImagesFrom) > 0 {
		from, unmatched, err := readImagesFrom(o.Workspace, o.ImagesFrom)
		if err != nil {
			return Result{}, err
		}
		if err := (noMatch{from: unmatched}).check(o.AllowNoMatch, o.Paths, o.Log); err != nil {
			return Result{}, err
		}
		o.Images = append(slices.Clone(o.Images), from...)
		if len(from) == 0 && len(o.Images) == 0 && o.Image == "" && o.AllowNoMatch {
			o.Log.Warn("images-from gave no image and nothing else is to be bumped: nothing to do (allow-no-match)")
			return Result{DryRun: o.Mode == ModeDryRun}, nil
		}
	}
	ups, vps, err := o.updates()
	if err != nil {
		return Result{}, err
	}
	mopts := manifests.Options{Updates: ups, ValuePaths: vps}
	tmpl, err := template.New("message").Option("missingkey=error").Parse(cmp.Or(o.Message, DefaultMessage))
	if err != nil {
		return Result{}, fmt.Errorf("message template: %w", err)
	}

	if o.Mode == ModeDryRun && o.Repository == "" {
		root, err := checkoutRoot(o.Workspace)
		if err != nil {
			return Result{}, err
		}
		refs := &references{}
		mo := mopts
		mo.Referenced = refs.add
		edits, err := manifests.Plan(ctx, root, o.Paths, mo)
		if err != nil {
			return Result{}, err
		}
		globs, err := unmatchedGlobs(o.Paths, func(p []string) ([]string, error) { return manifests.Files(root, p) })
		if err != nil {
			return Result{}, err
		}
		if err := (noMatch{paths: globs, images: unreferenced(ups, refs)}).check(o.AllowNoMatch, o.Paths, o.Log); err != nil {
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
		tree := manifests.Tree{Files: snap.Files, Links: snap.Links, More: snap.More, Read: snap.Read}
		refs := &references{}
		mo := mopts
		mo.Referenced = refs.add
		edits, err := manifests.PlanTree(ctx, tree, o.Paths, mo)
		if err != nil {
			return nil, "", err
		}
		globs, err := unmatchedGlobs(o.Paths, tree.Select)
		if err != nil {
			return nil, "", err
		}
		if err := (noMatch{paths: globs, images: unreferenced(ups, refs)}).check(o.AllowNoMatch, o.Paths, o.Log); err != nil {
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
