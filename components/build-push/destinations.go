package buildpush

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/registry"
)

func refSuffix(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + r.Identifier()
}

// existingTags lists the repository's tags on a tag pipeline, where the
// semver aliases and latest depend on what is already released.
func existingTags(ctx context.Context, o Options, repo string) ([]string, error) {
	if o.Git.Tag == "" || !o.Push {
		return nil, nil
	}
	r, err := o.Registry.Repo(repo)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", repo, err)
	}
	tags, err := remote.List(r, o.Registry.RemoteOptions(ctx, r.Registry)...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		return nil, o.Registry.Explain(fmt.Errorf("listing the tags of %s: %w", repo, err), r, registry.Read)
	}
	return tags, nil
}

// destinations are the tags to push: Tags, or Image + tags from Git.
func destinations(ctx context.Context, o Options) ([]name.Reference, error) {
	var refs []name.Reference
	list := o.Tags
	if len(list) == 0 {
		repo := o.Image
		if repo == "" {
			repo = o.DefaultRepository
		}
		if repo == "" {
			return nil, nil
		}
		existing, err := existingTags(ctx, o, repo)
		if err != nil {
			return nil, err
		}
		for _, t := range gitmeta.BuildTags(o.Git, gitmeta.BuildTagOptions{SemverAliases: true, RequestPrefix: o.RequestPrefix, Existing: existing}) {
			list = append(list, repo+":"+t)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("image %s: no tag could be computed from the Git context (no commit SHA): set tags", repo)
		}
	}
	for _, t := range list {
		r, err := o.Registry.Ref(t)
		if err != nil {
			return nil, fmt.Errorf("tag %q: %w", t, err)
		}
		if _, ok := r.(name.Digest); ok {
			return nil, fmt.Errorf("tag %q is a digest reference: destinations are tags", t)
		}
		refs = append(refs, r)
	}
	return refs, nil
}

func titleOf(tags []name.Reference) string {
	if len(tags) == 0 {
		return ""
	}
	repo := tags[0].Context().RepositoryStr()
	return repo[strings.LastIndex(repo, "/")+1:]
}

// version is the version tag a build names: with explicit tags the first
// one's; else gitmeta.Version, when the first destination's repository
// holds that tag (it always does with tags from Git), else its first tag.
func version(o Options, tags []name.Reference) string {
	if len(tags) == 0 {
		return gitmeta.Version(o.Git, o.RequestPrefix)
	}
	first := tags[0]
	if len(o.Tags) == 0 {
		v := gitmeta.Version(o.Git, o.RequestPrefix)
		for _, t := range tags {
			if t.Context().Name() == first.Context().Name() && t.Identifier() == v {
				return v
			}
		}
	}
	return first.Identifier()
}
