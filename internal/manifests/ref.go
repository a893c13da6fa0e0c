// Package manifests finds and rewrites container image references in YAML
// files byte-exactly: only the edited scalars change, every other byte
// (comments, blank lines, key order, quoting, indentation, block scalars,
// anchors) is kept. YAML is parsed only to locate scalars; new values are
// spliced into the original bytes, and the result is re-parsed and checked
// before anything is written.
package manifests

import (
	"fmt"
	"regexp"
	"strings"
)

// Ref is an image reference split into its parts, as written: Domain is
// empty when the reference names no registry host.
type Ref struct {
	Domain string
	Path   string
	Tag    string
	Digest string
}

var (
	pathComponent = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	pathRe        = regexp.MustCompile(`^` + pathComponent + `(?:/` + pathComponent + `)*$`)
	domainRe      = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$`)
	tagRe         = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRe      = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// ParseRef parses repo[:tag][@digest]. The repository is kept as written
// (no docker.io or library/ is added).
func ParseRef(s string) (Ref, error) {
	var r Ref
	if s == "" {
		return r, fmt.Errorf("empty image reference")
	}
	if len(s) > 512 {
		return r, fmt.Errorf("image reference %.40q... is longer than 512 characters", s)
	}
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRe.MatchString(r.Digest) {
			return Ref{}, fmt.Errorf("image reference %q: digest %q is not algorithm:hex (sha256:...)", s, r.Digest)
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRe.MatchString(r.Tag) {
			return Ref{}, fmt.Errorf("image reference %q: tag %q is not valid (letters, digits, _ . -, at most 128)", s, r.Tag)
		}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			r.Domain = first
			rest = rest[i+1:]
			if !domainRe.MatchString(r.Domain) {
				return Ref{}, fmt.Errorf("image reference %q: registry host %q is not valid", s, r.Domain)
			}
		}
	}
	r.Path = rest
	if !pathRe.MatchString(r.Path) {
		return Ref{}, fmt.Errorf("image reference %q: repository %q is not valid (lowercase letters, digits, separators)", s, r.Path)
	}
	return r, nil
}

// Repo is the repository as written: domain/path or path.
func (r Ref) Repo() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the reference as written: repo[:tag][@digest].
func (r Ref) String() string {
	s := r.Repo()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// normalized returns the repository with Docker Hub's implicit parts.
func normalized(domain, path string) (string, string) {
	if domain == "" || domain == "index.docker.io" || domain == "registry-1.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return domain, path
}

// SameRepo reports whether two repositories (no tag or digest) name the same
// image: equal as written, equal after Docker Hub normalization, or equal
// paths when one of them names no registry host.
func SameRepo(a, b string) bool {
	if a == b {
		return true
	}
	ra, err := ParseRef(a)
	if err != nil || ra.Tag != "" || ra.Digest != "" {
		return false
	}
	rb, err := ParseRef(b)
	if err != nil || rb.Tag != "" || rb.Digest != "" {
		return false
	}
	da, pa := normalized(ra.Domain, ra.Path)
	db, pb := normalized(rb.Domain, rb.Path)
	if da == db && pa == pb {
		return true
	}
	if ra.Domain == "" || rb.Domain == "" {
		return ra.Path == rb.Path
	}
	return false
}

// Pin says which parts of the new reference are written.
type Pin string

// Pins. PinAuto writes what the new reference has (tag, digest or both).
const (
	PinAuto         Pin = "auto"
	PinTag          Pin = "tag"
	PinDigest       Pin = "digest"
	PinTagAndDigest Pin = "tag-and-digest"
)

// ParsePin accepts auto (or empty), tag, digest and tag-and-digest.
func ParsePin(s string) (Pin, error) {
	switch Pin(s) {
	case "", PinAuto:
		return PinAuto, nil
	case PinTag, PinDigest, PinTagAndDigest:
		return Pin(s), nil
	}
	return "", fmt.Errorf("pin %q: want auto, tag, digest or tag-and-digest", s)
}

// Update is one `images` entry: every reference to Name gets the new
// repository (when NewRepo is set), tag and digest.
type Update struct {
	// Entry is the entry as given, for messages.
	Entry string
	// Name is the repository to look for, with or without registry host.
	Name string
	// NewRepo is the repository to write; empty keeps each reference's own.
	NewRepo string
	// Tag and Digest are what is written, after the pin is applied: an
	// empty Tag removes the tag of a full reference, likewise Digest.
	Tag    string
	Digest string
	// Pin is the pin the entry was parsed with.
	Pin Pin
}

// Entry turns an images entry into name=newref: a bare reference
// repo:tag, repo@digest or repo:tag@digest (build-push's ref output) is
// repo=itself.
func Entry(e string) (string, error) {
	e = strings.TrimSpace(e)
	if strings.Contains(e, "=") {
		return e, nil
	}
	r, err := ParseRef(e)
	if err != nil {
		return "", fmt.Errorf("images entry %q: want name=newref or a reference repo:tag, repo@digest or repo:tag@digest: %w", e, err)
	}
	if r.Tag == "" && r.Digest == "" {
		return "", fmt.Errorf("images entry %q: want name=newref, or a reference with a tag or digest (repo:tag, repo@digest, repo:tag@digest) to bump %s to", e, r.Repo())
	}
	return r.Repo() + "=" + e, nil
}

// ParseUpdate parses `name=newref` where newref is tag, @digest, tag@digest,
// repo:tag, repo@digest or repo:tag@digest, and applies pin.
func ParseUpdate(entry string, pin Pin) (Update, error) {
	u := Update{Entry: entry}
	name, newref, ok := strings.Cut(strings.TrimSpace(entry), "=")
	if !ok || name == "" || newref == "" {
		return u, fmt.Errorf("images entry %q: want name=newref (newref: tag, @digest, repo:tag, repo@digest or repo:tag@digest)", entry)
	}
	nr, err := ParseRef(name)
	if err != nil {
		return u, fmt.Errorf("images entry %q: name: %w", entry, err)
	}
	if nr.Tag != "" || nr.Digest != "" {
		return u, fmt.Errorf("images entry %q: name %q must be a repository without tag or digest", entry, name)
	}
	u.Name = name
	var tag, digest string
	before, after, hasDigest := strings.Cut(newref, "@")
	switch {
	case !strings.ContainsAny(before, ":/"):
		// tag, @digest or tag@digest: the repository stays.
		tag, digest = before, after
		if tag != "" && !tagRe.MatchString(tag) {
			return u, fmt.Errorf("images entry %q: tag %q is not valid (letters, digits, _ . -, at most 128)", entry, tag)
		}
		if hasDigest && !digestRe.MatchString(digest) {
			return u, fmt.Errorf("images entry %q: digest %q is not algorithm:hex (sha256:...)", entry, digest)
		}
	default:
		r, err := ParseRef(newref)
		if err != nil {
			return u, fmt.Errorf("images entry %q: %w", entry, err)
		}
		if r.Tag == "" && r.Digest == "" {
			return u, fmt.Errorf("images entry %q: new reference %q has neither tag nor digest; write repo:tag, repo@digest or repo:tag@digest", entry, newref)
		}
		u.NewRepo = r.Repo()
		tag, digest = r.Tag, r.Digest
	}
	switch pin {
	case "", PinAuto:
	case PinTag:
		if tag == "" {
			return u, fmt.Errorf("images entry %q: pin is tag but the new reference has no tag", entry)
		}
		digest = ""
	case PinDigest:
		if digest == "" {
			return u, fmt.Errorf("images entry %q: pin is digest but the new reference has no digest", entry)
		}
		tag = ""
	case PinTagAndDigest:
		if tag == "" || digest == "" {
			return u, fmt.Errorf("images entry %q: pin is tag-and-digest but the new reference lacks a tag or a digest", entry)
		}
	default:
		return u, fmt.Errorf("pin %q: want auto, tag, digest or tag-and-digest", pin)
	}
	u.Tag, u.Digest, u.Pin = tag, digest, pin
	return u, nil
}

// Matches reports whether repo (no tag or digest) is this update's image.
func (u Update) Matches(repo string) bool {
	return SameRepo(u.Name, repo) || (u.NewRepo != "" && SameRepo(u.NewRepo, repo))
}

// Apply returns the new reference for an existing one.
func (u Update) Apply(old Ref) Ref {
	n := Ref{Domain: old.Domain, Path: old.Path, Tag: u.Tag, Digest: u.Digest}
	if u.NewRepo != "" {
		r, _ := ParseRef(u.NewRepo)
		n.Domain, n.Path = r.Domain, r.Path
	}
	return n
}

// Label is how the update is named in messages and commits: the new
// repository or the name, with the tag (or the digest when there is none).
func (u Update) Label() string {
	repo := u.NewRepo
	if repo == "" {
		repo = u.Name
	}
	return repo
}

// Version is the new tag, or the digest when there is no tag.
func (u Update) Version() string {
	if u.Tag != "" {
		return u.Tag
	}
	return u.Digest
}
