package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/memory"
)

// blobLimit is the size from which a blob stays out of the clone where the
// server filters objects (git's partial clone: uploadpack.allowFilter, on
// at GitHub and GitLab): a large file the edit does not read is never
// transferred nor held. A file the edit does read that was left out is
// fetched then, with one more fetch of the tip without the filter.
const blobLimit = 256 << 10

// tip is the branch tip of a remote, fetched shallow into memory: the
// commit, its trees and (where the server filters) its small blobs.
type tip struct {
	s      *memory.Storage
	ref    *plumbing.Reference // refs/heads/<branch> → the tip commit
	url    string
	auth   transport.AuthMethod
	filter bool // blobs from blobLimit on were left out

	mu       sync.RWMutex // a refetch writes the storage the reads share
	complete bool         // the unfiltered tip has been fetched
}

// fetchTip fetches the tip of branch (the remote's default branch when
// empty), depth 1, without tags, into memory.
func fetchTip(ctx context.Context, url string, auth transport.AuthMethod, branch string) (*tip, error) {
	t := &tip{s: memory.NewStorage(), url: url, auth: auth}
	ref, filter, err := t.fetch(ctx, branch, true)
	if err != nil {
		return nil, err
	}
	t.ref, t.filter = ref, filter
	return t, nil
}

// fetch runs one upload-pack exchange into t.s and returns the branch's
// reference and whether the blob filter was applied.
func (t *tip) fetch(ctx context.Context, branch string, filter bool) (ref *plumbing.Reference, filtered bool, err error) {
	sess, adv, err := openUploadPack(ctx, t.url, t.auth)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if cerr := sess.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	ref, err = branchRef(adv, branch)
	if err != nil {
		return nil, false, err
	}
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	req.Wants = []plumbing.Hash{ref.Hash()}
	req.Depth = packp.DepthCommits(1)
	if err := req.Capabilities.Set(capability.Shallow); err != nil {
		return nil, false, err
	}
	if adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return nil, false, err
		}
	}
	if filter && adv.Capabilities.Supports(capability.Filter) {
		if err := req.Capabilities.Set(capability.Filter); err != nil {
			return nil, false, err
		}
		req.Filter = packp.FilterBlobLimit(blobLimit, packp.BlobLimitPrefixNone)
		filtered = true
	}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if cerr := resp.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if len(resp.Shallows) > 0 {
		if err := t.s.SetShallow(resp.Shallows); err != nil {
			return nil, false, err
		}
	}
	if err := packfile.UpdateObjectStorage(t.s, demux(req.Capabilities, resp)); err != nil {
		return nil, false, err
	}
	if err := t.s.SetReference(ref); err != nil {
		return nil, false, err
	}
	return ref, filtered, nil
}

// openUploadPack opens an upload-pack (fetch) session and reads what the
// remote advertises. The caller closes the session.
func openUploadPack(ctx context.Context, url string, auth transport.AuthMethod) (transport.UploadPackSession, *packp.AdvRefs, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return nil, nil, err
	}
	sess, err := cl.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, nil, err
	}
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		_ = sess.Close()
		return nil, nil, err
	}
	return sess, adv, nil
}

// branchRef finds refs/heads/<branch>, or what HEAD points at.
func branchRef(adv *packp.AdvRefs, branch string) (*plumbing.Reference, error) {
	refs, err := adv.AllReferences()
	if err != nil {
		return nil, err
	}
	name := plumbing.HEAD
	if branch != "" {
		name = plumbing.NewBranchReferenceName(branch)
	}
	r, err := storer.ResolveReference(refs, name)
	if err != nil {
		if branch == "" {
			return nil, fmt.Errorf("the remote has no default branch (HEAD): give branch: %w", err)
		}
		return nil, fmt.Errorf("couldn't find remote ref %q: %w", name, err)
	}
	if branch == "" {
		// The branch HEAD names, from the symref capability.
		for _, v := range adv.Capabilities.Get(capability.SymRef) {
			if src, dst, ok := strings.Cut(v, ":"); ok && src == plumbing.HEAD.String() {
				return plumbing.NewHashReference(plumbing.ReferenceName(dst), r.Hash()), nil
			}
		}
		return nil, errors.New("the remote does not say which branch HEAD is: give branch")
	}
	return plumbing.NewHashReference(name, r.Hash()), nil
}

func demux(caps *capability.List, r io.Reader) io.Reader {
	switch {
	case caps.Supports(capability.Sideband64k):
		return sideband.NewDemuxer(sideband.Sideband64k, r)
	case caps.Supports(capability.Sideband):
		return sideband.NewDemuxer(sideband.Sideband, r)
	}
	return r
}

// remoteTip is where the remote's branch points now (zero when it does not
// exist).
func remoteTip(ctx context.Context, url string, auth transport.AuthMethod, branch string) (plumbing.Hash, error) {
	sess, adv, err := openUploadPack(ctx, url, auth)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer sess.Close()
	ref, err := branchRef(adv, branch)
	if err != nil {
		return plumbing.ZeroHash, nil
	}
	return ref.Hash(), nil
}

// snapshot lists the files of the tree and reads its symlinks; a file's
// content is read when the edit asks for it (Snapshot.Read).
func (t *tip) snapshot(ctx context.Context, tree *object.Tree) (Snapshot, error) {
	snap := Snapshot{Files: map[string][]byte{}, Links: map[string]string{}, More: map[string]bool{}}
	blobs := map[string]plumbing.Hash{}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return snap, fmt.Errorf("listing the files of the clone: %w", err)
		}
		switch {
		case e.Mode == filemode.Symlink:
			b, err := t.blob(ctx, e.Hash, name)
			if err != nil {
				return snap, err
			}
			snap.Links[name] = string(b)
		case e.Mode.IsFile():
			snap.More[name] = true
			blobs[name] = e.Hash
		}
	}
	snap.Read = func(name string) ([]byte, error) {
		h, ok := blobs[name]
		if !ok {
			return nil, fmt.Errorf("%s: no such file in the clone", name)
		}
		return t.blob(ctx, h, name)
	}
	return snap, nil
}

// blob reads one blob. One the filter left out is fetched on its own
// where the server allows asking for an object by its hash (as git's
// partial clone does), else with the whole tip, unfiltered.
func (t *tip) blob(ctx context.Context, h plumbing.Hash, name string) ([]byte, error) {
	b, err := t.read(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) && t.filter {
		if ferr := t.fetchObject(ctx, h); ferr != nil {
			if ferr := t.fetchAll(ctx); ferr != nil {
				return nil, fmt.Errorf("fetching %s (left out of the clone for its size): %w", name, ferr)
			}
		}
		b, err = t.read(h)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s from the clone: %w", name, err)
	}
	return b, nil
}

func (t *tip) read(h plumbing.Hash) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	obj, err := t.s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	buf.Grow(int(obj.Size()) + bytes.MinRead) // ReadFrom needs MinRead free at EOF, else it doubles
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fetchObject fetches one object by its hash.
func (t *tip) fetchObject(ctx context.Context, h plumbing.Hash) (err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.s.EncodedObject(plumbing.AnyObject, h); err == nil {
		return nil // another reader fetched it
	}
	sess, adv, err := openUploadPack(ctx, t.url, t.auth)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	req.Wants = []plumbing.Hash{h}
	if adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := resp.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := packfile.UpdateObjectStorage(t.s, demux(req.Capabilities, resp)); err != nil {
		return err
	}
	_, err = t.s.EncodedObject(plumbing.AnyObject, h)
	return err
}

// fetchAll fetches the tip again without the filter, once.
func (t *tip) fetchAll(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.complete {
		return nil
	}
	ref, _, err := t.fetch(ctx, t.ref.Name().Short(), false)
	if err != nil {
		return err
	}
	if ref.Hash() != t.ref.Hash() {
		return fmt.Errorf("%w: %s moved to %s while its files were read", ErrRejected, t.ref.Name().Short(), shortHash(ref.Hash()))
	}
	t.complete = true
	return nil
}
