package manifests

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// ociPrefix is the scheme of an OCIRepository's spec.url.
const ociPrefix = "oci://"

// ociRepository edits a Flux OCIRepository (source.toolkit.fluxcd.io):
// spec.url (oci://repo) names the artifact, spec.ref.tag and spec.ref.digest
// pin it — what publish pushes and outputs as repo@digest. A digest left in
// place would win over a new tag, so a tag-only update removes it; a
// semver range is left alone (it is not a pin).
func (p *planner) ociRepository(root *yaml.Node) {
	spec := val(root, "spec")
	urlN := val(spec, "url")
	url, ok := scalar(urlN)
	if !ok || !strings.HasPrefix(url, ociPrefix) || p.marked[urlN] {
		return
	}
	repo := strings.TrimPrefix(url, ociPrefix)
	if r, err := ParseRef(repo); err != nil || r.Tag != "" || r.Digest != "" {
		return
	}
	u, ok := p.match(repo)
	if !ok {
		return
	}
	if u.NewRepo != "" && !SameRepo(u.NewRepo, repo) {
		p.set(urlN, ociPrefix+u.NewRepo, u, "url", false)
	}
	ref := val(spec, "ref")
	if ref == nil || ref.Kind != yaml.MappingNode {
		if u.Tag != "" || u.Digest != "" {
			p.errorf(urlN, "OCIRepository %s has no spec.ref mapping to pin; add `ref: {tag: latest}` under spec", url)
		}
		return
	}
	if ref.Style&yaml.FlowStyle != 0 {
		p.errorf(ref, "OCIRepository %s: spec.ref is a flow mapping ({...}); write it as a block mapping to be bumped", url)
		return
	}
	tagN, digestN := val(ref, "tag"), val(ref, "digest")
	if u.Tag != "" {
		if tagN != nil {
			p.set(tagN, u.Tag, u, "ref.tag", false)
		} else {
			p.insert(ref, "tag", u.Tag, u, "ref.tag")
		}
	}
	switch {
	case u.Digest != "" && digestN != nil:
		p.set(digestN, u.Digest, u, "ref.digest", false)
	case u.Digest != "":
		p.insert(ref, "digest", u.Digest, u, "ref.digest")
	case digestN != nil && digestN.Value != "":
		p.remove(ref, "digest", u, "ref.digest")
	}
}
