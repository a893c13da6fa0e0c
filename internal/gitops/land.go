// Package gitops lands a change in a git repository: shallow-clone the
// branch, apply an edit, commit, push — and when the push is rejected
// because someone else pushed first, start again from the new tip, with
// jittered backoff, never forcing.
package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/hoist-ci/hoist/internal/backoff"
	"github.com/hoist-ci/hoist/internal/redact"
)

// EditFunc applies the change to the branch tip's files and returns the new
// contents of the files it changed (none: nothing to commit) and the commit
// message. It is called once per attempt, each time on the newest tip.
type EditFunc func(ctx context.Context, snap Snapshot, tip string) (changed map[string][]byte, message string, err error)

// Options say where and how to land.
type Options struct {
	// URL of the repository (https://, ssh://, git://, file:// or a path).
	URL string
	// Branch to commit to; empty means the remote's default branch.
	Branch string
	// PushBranch, when set, is pushed instead of Branch (a pull-request
	// branch owned by the tool): the commit is made on Branch's tip and
	// replaces whatever PushBranch held. Branch itself is never forced.
	PushBranch string
	Auth       transport.AuthMethod
	// AuthorName and AuthorEmail sign the commit (committer too).
	AuthorName  string
	AuthorEmail string
	// Signer, when set, signs the commit (see NewSigner).
	Signer Signer
	// MaxAttempts bounds the attempts; 0 means 5.
	MaxAttempts int
	// Backoff is the base delay between attempts (doubled each time, with
	// full jitter); 0 means 500ms.
	Backoff time.Duration
	Edit    EditFunc
	Log     *slog.Logger
	// Now and Sleep are the clock (tests replace them).
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Result is what landed.
type Result struct {
	Changed  bool
	Commit   string
	Files    []string
	Message  string
	Attempts int
	// Base is the commit the change was made on, on Branch.
	Base   string
	Branch string
}

// ErrRejected marks a push the remote refused because the branch moved.
var ErrRejected = errors.New("push rejected: the branch moved")

// Land clones, edits, commits and pushes, retrying on a moved branch.
func Land(ctx context.Context, o Options) (Result, error) {
	res, err := land(ctx, o)
	// A git server's answer (go-git copies the body of an error response
	// into its errors) may echo the credentials.
	return res, redact.Error(err, secretsOf(o.Auth)...)
}

// secretsOf are the credential values of an auth method, for redaction.
func secretsOf(auth transport.AuthMethod) []string {
	if b, ok := auth.(*githttp.BasicAuth); ok && b.Password != "" {
		return []string{b.Password}
	}
	if b, ok := auth.(*githttp.TokenAuth); ok && b.Token != "" {
		return []string{b.Token}
	}
	return nil
}

func land(ctx context.Context, o Options) (Result, error) {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = backoff.Sleep
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var last error
	for attempt := 1; attempt <= o.MaxAttempts; attempt++ {
		res, err := o.attempt(ctx)
		res.Attempts = attempt
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrRejected) {
			return res, err
		}
		last = err
		if attempt == o.MaxAttempts {
			break
		}
		// Full jitter: a random delay up to base * 2^(attempt-1), capped.
		ceiling := o.Backoff << (attempt - 1)
		if ceiling > 10*time.Second {
			ceiling = 10 * time.Second
		}
		d := time.Duration(rand.Int64N(int64(ceiling)) + int64(ceiling)/4)
		o.Log.Info("the branch moved while landing; starting again from its new tip", "attempt", attempt, "of", o.MaxAttempts, "wait", d.Round(time.Millisecond).String())
		if err := o.Sleep(ctx, d); err != nil {
			return Result{Attempts: attempt}, err
		}
	}
	return Result{Attempts: o.MaxAttempts}, fmt.Errorf("landing on %s: %d attempts, every push rejected because the branch kept moving (raise max-attempts): %w", o.Branch, o.MaxAttempts, last)
}

func (o Options) attempt(ctx context.Context) (Result, error) {
	// A shallow fetch of the tip into memory, without a work tree: go-git's
	// checkout and status cost seconds on thousands of files. Where the
	// server filters, large blobs stay out of it; the edit reads the files
	// it needs on demand, and the commit is built from tree objects.
	t, err := fetchTip(ctx, o.URL, o.Auth, o.Branch)
	if err != nil {
		return Result{}, fmt.Errorf("cloning %s (branch %q): %w", redact.URL(o.URL), o.Branch, err)
	}
	head := t.ref
	branch := head.Name().Short()
	res := Result{Base: head.Hash().String(), Branch: branch}
	base, err := object.GetCommit(t.s, head.Hash())
	if err != nil {
		return res, fmt.Errorf("reading commit %s: %w", head.Hash(), err)
	}
	tree, err := base.Tree()
	if err != nil {
		return res, fmt.Errorf("reading the tree of %s: %w", head.Hash(), err)
	}
	snap, err := t.snapshot(ctx, tree)
	if err != nil {
		return res, err
	}
	edited, message, err := o.Edit(ctx, snap, res.Base)
	if err != nil {
		return res, err
	}
	if len(edited) == 0 {
		return res, nil
	}
	blobs := map[string]plumbing.Hash{}
	var files []string
	// created is every object the commit adds: exactly what is pushed.
	var created []plumbing.Hash
	for f, content := range edited {
		if _, ok := snap.Files[f]; !ok && !snap.More[f] {
			return res, fmt.Errorf("internal error: the edit changed %s, which is not a file of the tree", f)
		}
		if blobs[f], err = storeBlob(t.s, content); err != nil {
			return res, fmt.Errorf("storing %s: %w", f, err)
		}
		files = append(files, f)
		created = append(created, blobs[f])
	}
	sort.Strings(files)
	dirs := map[string]bool{}
	for f := range blobs {
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	newTree, changed, err := rebuild(t.s, tree, "", blobs, dirs, &created)
	if err != nil {
		return res, err
	}
	if !changed {
		return res, nil
	}
	sig := object.Signature{Name: o.AuthorName, Email: o.AuthorEmail, When: o.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: newTree, ParentHashes: []plumbing.Hash{head.Hash()}}
	if o.Signer != nil {
		unsigned := &plumbing.MemoryObject{}
		if err := commit.EncodeWithoutSignature(unsigned); err != nil {
			return res, fmt.Errorf("committing: %w", err)
		}
		r, err := unsigned.Reader()
		if err != nil {
			return res, fmt.Errorf("committing: %w", err)
		}
		signature, err := o.Signer.Sign(r)
		if err != nil {
			return res, fmt.Errorf("signing the commit: %w", err)
		}
		commit.PGPSignature = string(signature)
	}
	obj := t.s.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return res, fmt.Errorf("committing: %w", err)
	}
	ch, err := t.s.SetEncodedObject(obj)
	if err != nil {
		return res, fmt.Errorf("committing: %w", err)
	}
	local := plumbing.NewBranchReferenceName(branch)
	if err := t.s.SetReference(plumbing.NewHashReference(local, ch)); err != nil {
		return res, fmt.Errorf("committing: %w", err)
	}
	res.Changed, res.Commit, res.Files, res.Message = true, ch.String(), files, message

	// Two files (or directories) may end up with the same content: a pack
	// holds each object once.
	slices.SortFunc(created, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
	created = slices.Compact(append(created, ch))

	target, force := branch, false
	if o.PushBranch != "" {
		target, force = o.PushBranch, true
	}
	err = push(ctx, o.URL, o.Auth, plumbing.NewBranchReferenceName(target), head.Hash(), ch, force, t.s, created)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, ErrRejected):
		return res, err
	case o.PushBranch == "" && (rejected(err) || moved(ctx, o.URL, o.Auth, target, res.Base)):
		return res, fmt.Errorf("%w: %v", ErrRejected, err)
	default:
		return res, fmt.Errorf("pushing to %s (branch %s): %w", redact.URL(o.URL), target, err)
	}
}

// push updates ref on the remote to commit, sending exactly the objects the
// commit created: everything else is in the base commit, which the remote
// has. go-git's own push walks the whole tree of the remote's refs to find
// what to leave out, which costs far more than the edit on thousands of
// files.
//
// Without force the update is a compare-and-swap: the remote moves ref
// from base to commit only if it still points at base (git receive-pack
// checks the old value under the ref's lock), so a concurrent update is
// never overwritten. With force (a branch the tool owns) the old value is
// whatever the remote advertised.
func push(ctx context.Context, url string, auth transport.AuthMethod, ref plumbing.ReferenceName, base, commit plumbing.Hash, force bool, s storer.EncodedObjectStorer, objects []plumbing.Hash) (err error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := cl.NewReceivePackSession(ep, auth)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	remoteRefs, err := adv.AllReferences()
	if err != nil {
		return err
	}
	current := plumbing.ZeroHash
	if r, err := remoteRefs.Reference(ref); err == nil {
		current = r.Hash()
	}
	old := base
	if force {
		old = current
	} else if current != base {
		return fmt.Errorf("%w: %s is at %s now, not %s", ErrRejected, ref.Short(), shortHash(current), shortHash(base))
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(adv.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: commit}}
	rd, wr := io.Pipe()
	req.Packfile = rd
	done := make(chan error, 1)
	go func() {
		// Whole objects, no delta search: the deltas would be against
		// objects of the base, which a non-thin pack cannot reference.
		done <- wr.CloseWithError(writePack(wr, s, objects))
	}()
	status, err := sess.ReceivePack(ctx, req)
	if err != nil {
		_ = rd.Close()
		<-done
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("encoding the pack: %w", err)
	}
	if status != nil {
		return status.Error()
	}
	return nil
}

func shortHash(h plumbing.Hash) string {
	if h.IsZero() {
		return "(none)"
	}
	return h.String()[:12]
}

// Snapshot is the branch tip's files: the symlinks by path with their
// targets, and the files by path, whose contents Read gives on demand (a
// file the edit does not read is never read, nor, where the server
// filters, transferred when it is large). Files holds contents read
// already (tests fill it instead of More and Read).
type Snapshot struct {
	Files map[string][]byte
	Links map[string]string
	More  map[string]bool
	Read  func(path string) ([]byte, error)
}

// File reads a file of the snapshot (fs.ErrNotExist when it has none).
func (s Snapshot) File(path string) ([]byte, error) {
	if b, ok := s.Files[path]; ok {
		return b, nil
	}
	if s.More[path] && s.Read != nil {
		return s.Read(path)
	}
	return nil, fs.ErrNotExist
}

func storeBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// rebuild returns the tree with the blobs at the given paths replaced (the
// paths are in the tree already: the edit never adds or removes files).
func rebuild(s storer.EncodedObjectStorer, t *object.Tree, prefix string, blobs map[string]plumbing.Hash, dirs map[string]bool, created *[]plumbing.Hash) (plumbing.Hash, bool, error) {
	entries := slices.Clone(t.Entries)
	changed := false
	for i, e := range entries {
		p := e.Name
		if prefix != "" {
			p = prefix + "/" + e.Name
		}
		if e.Mode == filemode.Dir {
			if !dirs[p] {
				continue
			}
			sub, err := object.GetTree(s, e.Hash)
			if err != nil {
				return plumbing.ZeroHash, false, fmt.Errorf("reading tree %s: %w", p, err)
			}
			h, ch, err := rebuild(s, sub, p, blobs, dirs, created)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			if ch {
				entries[i].Hash, changed = h, true
			}
			continue
		}
		if h, ok := blobs[p]; ok && h != e.Hash {
			entries[i].Hash, changed = h, true
		}
	}
	if !changed {
		return t.Hash, false, nil
	}
	obj := s.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, false, err
	}
	h, err := s.SetEncodedObject(obj)
	*created = append(*created, h)
	return h, true, err
}

// rejected reports whether a push failed because the remote branch moved
// (rather than for auth, network or permission reasons).
func rejected(err error) bool {
	if errors.Is(err, git.ErrForceNeeded) {
		return true
	}
	s := err.Error()
	for _, m := range []string{"non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref", "failed to lock", "reference already exists", "stale info"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// moved reports whether the remote branch no longer points at base. In a
// shallow clone go-git reports a moved branch as "object not found" (it
// cannot walk past the clone's boundary), so the remote is asked.
func moved(ctx context.Context, url string, auth transport.AuthMethod, branch, base string) bool {
	h, err := remoteTip(ctx, url, auth, branch)
	return err == nil && !h.IsZero() && h.String() != base
}
