package buildcontext

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/hoist-ci/hoist/internal/extract"
	"github.com/hoist-ci/hoist/internal/redact"
)

// git://host/org/repo.git#<ref>#<commit>, as kaniko reads it: the
// repository is cloned over https (GIT_PULL_METHOD=http for plain http;
// hoist also takes GIT_PULL_METHOD=git for the git protocol of a
// `git daemon`), at <ref> (a branch or tag, full or short, or a commit),
// then <commit> is checked out. Credentials come from GIT_TOKEN, or
// GIT_USERNAME and GIT_PASSWORD, or the URL's user info; GIT_SSL_CAINFO
// names a CA bundle for a server with a private certificate. The fetch is
// shallow (the ref's last commit; the commit alone when the server allows
// fetching it by SHA, else the ref's history) and only the commit's files
// are written, through the same extractor as a tarball: the build sees no
// .git directory, as with Docker's git contexts, so no credential a remote
// URL holds can reach an image.

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
	if commit != "" && !plumbing.IsHash(commit) {
		return fmt.Errorf("%q is not a commit SHA (40 hexadecimal digits)", commit)
	}
	ep, err := transport.NewEndpoint(repoURL)
	if err != nil {
		return fmt.Errorf("git://%s: %w", redact.URL(parts[0]), err)
	}
	shown := redact.URL(repoURL)
	r, err := newGitRemote(ep, o)
	if err != nil {
		return err
	}
	adv, err := r.advertised(ctx)
	if err != nil {
		return fmt.Errorf("reading the references of %s: %w", shown, gitHint(err))
	}
	tip, err := resolveRef(adv, ref)
	if err != nil {
		return fmt.Errorf("%s%s: %w", shown, refNote(ref), gitHint(err))
	}
	want := tip
	if commit != "" {
		want = plumbing.NewHash(commit)
	}
	st := memory.NewStorage()
	if err := r.fetch(ctx, adv, st, want, 1); err != nil {
		if commit == "" || want == tip {
			return fmt.Errorf("fetching %s%s: %w", shown, refNote(ref), gitHint(err))
		}
		// The server does not serve a commit by its SHA alone: fetch the
		// ref's history, which holds it.
		o.Log.Debug("the server does not serve the commit alone: fetching the ref's history", "error", err.Error())
		st = memory.NewStorage()
		if err := r.fetch(ctx, adv, st, tip, 0); err != nil {
			return fmt.Errorf("fetching %s%s: %w", shown, refNote(ref), gitHint(err))
		}
	}
	cm, err := commitOf(st, want)
	if err != nil {
		return fmt.Errorf("%s%s: commit %s: %w", shown, refNote(ref), want, err)
	}
	return checkout(ctx, cm, c, o)
}

// gitRemote speaks git's upload-pack protocol itself — smart HTTP or the
// git protocol — with go-git's public codecs (references, requests,
// responses, packfiles): calling go-git's transports through their
// interface would link every transport go-git registers, SSH included,
// about a megabyte of build-push.
type gitRemote struct {
	ep   *transport.Endpoint
	http *http.Client
	user string
	pass string
}

func newGitRemote(ep *transport.Endpoint, o Options) (*gitRemote, error) {
	r := &gitRemote{ep: ep, http: o.HTTP}
	if ep.Protocol == "git" {
		return r, nil
	}
	if f := o.Getenv("GIT_SSL_CAINFO"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("GIT_SSL_CAINFO: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("GIT_SSL_CAINFO %s holds no PEM certificate", f)
		}
		base, ok := o.HTTP.Transport.(*http.Transport)
		if !ok || base == nil {
			base = http.DefaultTransport.(*http.Transport)
		}
		tr := base.Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		r.http = &http.Client{Transport: tr}
	}
	r.user, r.pass = gitCredentials(o.Getenv)
	if r.user == "" && ep.User != "" {
		r.user, r.pass = ep.User, ep.Password
	}
	return r, nil
}

// repoURL is the repository's URL without credentials.
func (r *gitRemote) repoURL() string {
	u := *r.ep
	u.User, u.Password = "", ""
	return strings.TrimSuffix(u.String(), "/")
}

func (r *gitRemote) request(ctx context.Context, method, url string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if r.user != "" || r.pass != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	req.Header.Set("User-Agent", "git/2.0 (hoist)")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		req.Header.Set("Accept", "application/x-git-upload-pack-result")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, scrubURLError(err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && r.user == "" && r.pass == "":
		resp.Body.Close()
		return nil, transport.ErrAuthenticationRequired
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		return nil, transport.ErrAuthorizationFailed
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, transport.ErrRepositoryNotFound
	case resp.StatusCode != http.StatusOK:
		defer resp.Body.Close()
		return nil, fmt.Errorf("HTTP %s%s", resp.Status, bodyHint(resp))
	}
	return resp, nil
}

// dial opens a git protocol connection and asks for upload-pack.
func (r *gitRemote) dial(ctx context.Context) (net.Conn, error) {
	port := r.ep.Port
	if port <= 0 {
		port = 9418
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(r.ep.Host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	host := r.ep.Host
	if r.ep.Port > 0 && r.ep.Port != 9418 {
		host = net.JoinHostPort(r.ep.Host, strconv.Itoa(r.ep.Port))
	}
	req := packp.GitProtoRequest{RequestCommand: transport.UploadPackServiceName, Pathname: r.ep.Path, Host: host}
	if err := req.Encode(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func decodeAdvertised(rd io.Reader) (*packp.AdvRefs, error) {
	adv := packp.NewAdvRefs()
	if err := adv.Decode(rd); err != nil {
		if errors.Is(err, packp.ErrEmptyAdvRefs) {
			return nil, transport.ErrEmptyRemoteRepository
		}
		return nil, err
	}
	if adv.IsEmpty() {
		return nil, transport.ErrEmptyRemoteRepository
	}
	transport.FilterUnsupportedCapabilities(adv.Capabilities)
	return adv, nil
}

// advertised reads the repository's references.
func (r *gitRemote) advertised(ctx context.Context) (*packp.AdvRefs, error) {
	if r.ep.Protocol == "git" {
		conn, err := r.dial(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		adv, err := decodeAdvertised(conn)
		if err == nil {
			_ = pktline.NewEncoder(conn).Flush() // nothing wanted: the server hangs up
		}
		return adv, err
	}
	resp, err := r.request(ctx, http.MethodGet, r.repoURL()+"/info/refs?service="+transport.UploadPackServiceName, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decodeAdvertised(resp.Body)
}

// fetch asks for one object's history, depth commits deep (0: all), and
// stores the packfile's objects.
func (r *gitRemote) fetch(ctx context.Context, adv *packp.AdvRefs, st *memory.Storage, want plumbing.Hash, depth int) error {
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	req.Wants = []plumbing.Hash{want}
	if depth > 0 {
		req.Depth = packp.DepthCommits(depth)
		if err := req.Capabilities.Set(capability.Shallow); err != nil {
			return err
		}
	}
	if adv.Capabilities.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	var body bytes.Buffer
	if err := req.UploadRequest.Encode(&body); err != nil {
		return err
	}
	if err := req.UploadHaves.Encode(&body, false); err != nil {
		return err
	}
	if err := pktline.NewEncoder(&body).EncodeString("done\n"); err != nil {
		return err
	}
	var rd io.Reader
	if r.ep.Protocol == "git" {
		conn, err := r.dial(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := decodeAdvertised(conn); err != nil {
			return err
		}
		if _, err := conn.Write(body.Bytes()); err != nil {
			return err
		}
		rd = conn
	} else {
		resp, err := r.request(ctx, http.MethodPost, r.repoURL()+"/"+transport.UploadPackServiceName, &body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rd = resp.Body
	}
	res := packp.NewUploadPackResponse(req)
	if err := res.Decode(io.NopCloser(rd)); err != nil {
		return fmt.Errorf("the server refused the request: %w", err)
	}
	var pack io.Reader = res
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, res)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, res)
	}
	return packfile.UpdateObjectStorage(st, pack)
}

// resolveRef finds what a ref names among the advertised references: the
// remote's HEAD, a full ref, or a branch then a tag of a short name; an
// annotated tag is peeled to its commit when the server says it.
func resolveRef(adv *packp.AdvRefs, ref string) (plumbing.Hash, error) {
	refs, err := adv.AllReferences()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if ref == "" {
		if adv.Head != nil {
			return *adv.Head, nil
		}
		head, err := storer.ResolveReference(refs, plumbing.HEAD)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("the repository has no HEAD: %w", err)
		}
		return head.Hash(), nil
	}
	for _, name := range refCandidates(ref) {
		r, err := storer.ResolveReference(refs, name)
		if err != nil {
			continue
		}
		if peeled, ok := adv.Peeled[name.String()]; ok {
			return peeled, nil
		}
		return r.Hash(), nil
	}
	return plumbing.ZeroHash, plumbing.ErrReferenceNotFound
}

// commitOf reads a commit, or the commit an annotated tag points at.
func commitOf(st *memory.Storage, h plumbing.Hash) (*object.Commit, error) {
	if tag, err := object.GetTag(st, h); err == nil {
		return tag.Commit()
	}
	return object.GetCommit(st, h)
}

// checkout writes a commit's files into the context through the confined
// extractor: its tree becomes a tar stream (modes, executables, symbolic
// links kept; submodules left out, as with a plain clone) that the
// extractor unpacks as it unpacks a tarball context, within the size
// limit.
func checkout(ctx context.Context, cm *object.Commit, c *Context, o Options) error {
	tree, err := cm.Tree()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tree.Files().ForEach(func(f *object.File) error {
			h := &tar.Header{Name: f.Name, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: cm.Committer.When}
			switch f.Mode {
			case filemode.Executable:
				h.Mode = 0o755
			case filemode.Symlink:
				target, err := f.Contents()
				if err != nil {
					return err
				}
				h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
				return tw.WriteHeader(h)
			case filemode.Regular, filemode.Deprecated:
			default:
				return nil
			}
			h.Size = f.Size
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			rd, err := f.Reader()
			if err != nil {
				return err
			}
			defer rd.Close()
			_, err = io.Copy(tw, rd)
			return err
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	st, err := extract.Apply(ctx, c.Dir, &capped{r: pr, left: o.MaxSize, max: o.MaxSize, what: "unpacked"}, extract.Options{Log: o.Log, NoOwnership: true, Archive: true})
	pr.CloseWithError(errDone)
	c.Files, c.Bytes = st.Entries, st.Bytes
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%w: raise context-max-size or build from a smaller repository", err)
	}
	return err
}

// gitCredentials: GIT_TOKEN (as the user name, kaniko's way), else
// GIT_USERNAME and GIT_PASSWORD; none leaves the URL's own user info.
func gitCredentials(getenv func(string) string) (user, pass string) {
	user, pass = getenv("GIT_USERNAME"), getenv("GIT_PASSWORD")
	if token := getenv("GIT_TOKEN"); token != "" {
		user, pass = token, ""
	}
	if user == "" && pass != "" {
		user = "git"
	}
	return user, pass
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
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		return fmt.Errorf("%w: name a branch or tag the repository has (refs/heads/<branch>, refs/tags/<tag>)", err)
	}
	return err
}

// refCandidates are the references a ref may name: itself when full, else
// a branch then a tag of that name.
func refCandidates(ref string) []plumbing.ReferenceName {
	if strings.HasPrefix(ref, "refs/") {
		return []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	}
	return []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
}
