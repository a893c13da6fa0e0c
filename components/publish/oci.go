package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-ci/hoist/internal/fluxartifact"
	"github.com/hoist-ci/hoist/internal/gitmeta"
	"github.com/hoist-ci/hoist/internal/registry"
)

// maxParallelWrites bounds concurrent manifest writes to one registry.
const maxParallelWrites = 8

// destinations are the tags to push: Tags, or Image + tags from Git.
func destinations(ctx context.Context, opts Options) ([]name.Tag, error) {
	list := opts.Tags
	if len(list) == 0 && opts.Image != "" {
		repo, err := opts.Registry.Repo(opts.Image)
		if err != nil {
			return nil, fmt.Errorf("input \"image\": %w (give a repository; tags go in \"tags\")", err)
		}
		var existing []string
		if opts.Git.Tag != "" {
			// On a tag pipeline the semver aliases and latest depend on
			// what is already released.
			existing, err = remote.List(repo, opts.Registry.RemoteOptions(ctx, repo.Registry)...)
			if err != nil && !isNotFound(err) {
				return nil, opts.Registry.Explain(fmt.Errorf("listing the tags of %s: %w", repo, err), repo, registry.Read)
			}
		}
		for _, t := range gitmeta.BuildTags(opts.Git, gitmeta.BuildTagOptions{SemverAliases: true, RequestPrefix: opts.RequestPrefix, Existing: existing}) {
			list = append(list, repo.Tag(t).String())
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("input \"image\": no tag could be computed for %s from the Git context (no commit SHA): set \"tags\"", repo)
		}
	}
	var tags []name.Tag
	for _, t := range list {
		ref, err := opts.Registry.Ref(t)
		if err != nil {
			return nil, fmt.Errorf("input \"tags\": %w", err)
		}
		tag, ok := ref.(name.Tag)
		if !ok {
			return nil, fmt.Errorf("input \"tags\": %q is a digest reference; give registry/repo:tag", t)
		}
		if !strings.Contains(t, ":") || strings.LastIndex(t, ":") < strings.LastIndex(t, "/") {
			return nil, fmt.Errorf("input \"tags\": %q has no tag; write %s:1.4.2 (a bare repository goes in \"image\")", t, t)
		}
		if !slices.ContainsFunc(tags, func(x name.Tag) bool { return x.String() == tag.String() }) {
			tags = append(tags, tag)
		}
	}
	return tags, nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// remoteState is what one tag holds in the registry.
type remoteState struct {
	desc *remote.Descriptor // nil when the tag does not exist
	same bool               // it holds a Flux artifact with the same content
}

// pushArtifact writes img to every tag. With diff, a tag that already holds
// the same content is left alone, and the others are pointed at that
// manifest, so the digest Flux watches does not change.
func pushArtifact(ctx context.Context, opts Options, img v1.Image, res *Result) error {
	log := opts.Log
	tags, err := destinations(ctx, opts)
	if err != nil || len(tags) == 0 {
		return err
	}
	local, err := img.Digest()
	if err != nil {
		return err
	}
	var hosts []name.Registry
	for _, t := range tags {
		hosts = append(hosts, t.Registry)
	}
	res.Digest = local.String()
	res.Image = tags[0].Context().Digest(res.Digest).String()

	// What to write: the local artifact, or with diff the remote manifest
	// that already holds the same content.
	var src remote.Taggable = img
	var srcRepo string // the repository src is in, with diff
	var srcDigest = local
	states := make([]remoteState, len(tags))
	if opts.Diff {
		puller, err := opts.Registry.Puller(ctx, hosts...)
		if err != nil {
			return err
		}
		reads := append(opts.Registry.RemoteOptions(ctx, hosts...), remote.Reuse(puller))
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		content := fluxartifact.ContentDigest(m)
		for i, t := range tags {
			st, err := readState(t, content, reads)
			if err != nil {
				return opts.Registry.Explain(err, t.Context(), registry.Read)
			}
			states[i] = st
			if st.same && srcRepo == "" {
				src, srcRepo, srcDigest = st.desc, t.Context().String(), st.desc.Digest
			}
		}
		if srcRepo != "" {
			res.Unchanged = true
			res.Digest = srcDigest.String()
			res.Image = tags[0].Context().Digest(res.Digest).String()
			log.Info("diff: the remote content equals the local one: not pushed", "at", srcRepo+"@"+res.Digest, "content", m.Layers[0].Digest.String())
		} else {
			log.Info("diff: no tag holds this content: pushing", "content", m.Layers[0].Digest.String())
		}
	}

	var writes []name.Tag
	for i, t := range tags {
		if states[i].desc != nil && states[i].desc.Digest == srcDigest {
			log.Info("tag already holds the artifact", "tag", t.String(), "digest", srcDigest.String())
			continue
		}
		writes = append(writes, t)
	}
	for _, t := range tags {
		res.Tags = append(res.Tags, t.String())
	}
	if len(writes) == 0 {
		return nil
	}
	if opts.DryRun {
		for _, t := range writes {
			log.Info("dry run: would write", "tag", t.String(), "digest", srcDigest.String())
		}
		return nil
	}

	pusher, err := opts.Registry.Pusher(ctx, hosts...)
	if err != nil {
		return err
	}
	var done []string
	// Per repository: the first tag writes whatever blobs the repository
	// lacks and the manifest; the others are manifest writes, in parallel.
	byRepo := map[string][]name.Tag{}
	var repos []string
	for _, t := range writes {
		r := t.Context().String()
		if _, ok := byRepo[r]; !ok {
			repos = append(repos, r)
		}
		byRepo[r] = append(byRepo[r], t)
	}
	for _, r := range repos {
		rt := byRepo[r]
		first := rt[0]
		var err error
		if r == srcRepo {
			err = pusher.Put(ctx, first, src) // the manifest is already there
		} else {
			err = pusher.Push(ctx, first, src)
		}
		if err != nil {
			return partial(opts.Registry.Explain(fmt.Errorf("pushing %s: %w", first, err), first.Context(), registry.Push), done, writes)
		}
		log.Info("pushed", "tag", first.String(), "digest", srcDigest.String())
		done = append(done, first.String())
		errs := make([]error, len(rt)-1)
		var g errgroup.Group
		g.SetLimit(maxParallelWrites)
		for i, t := range rt[1:] {
			g.Go(func() error {
				if err := pusher.Put(ctx, t, src); err != nil {
					errs[i] = fmt.Errorf("writing tag %s: %w", t, err)
				}
				return nil
			})
		}
		_ = g.Wait() // every goroutine reports through errs
		for i, t := range rt[1:] {
			if errs[i] == nil {
				log.Info("tagged", "tag", t.String(), "digest", srcDigest.String())
				done = append(done, t.String())
			}
		}
		if err := errors.Join(errs...); err != nil {
			return partial(opts.Registry.Explain(err, first.Context(), registry.Push), done, writes)
		}
	}
	res.Pushed = true
	return nil
}

// readState reads what tag holds, comparing its content with content.
func readState(tag name.Tag, content v1.Hash, reads []remote.Option) (remoteState, error) {
	desc, err := remote.Get(tag, reads...)
	if isNotFound(err) {
		return remoteState{}, nil
	}
	if err != nil {
		return remoteState{}, fmt.Errorf("reading %s to compare its content: %w", tag, err)
	}
	st := remoteState{desc: desc}
	if m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest))); err == nil {
		st.same = fluxartifact.ContentDigest(m) == content
	}
	return st, nil
}

// partial says which tags a failed push wrote and which it did not.
func partial(err error, done []string, planned []name.Tag) error {
	var missing []string
	for _, t := range planned {
		if !slices.Contains(done, t.String()) {
			missing = append(missing, t.String())
		}
	}
	if len(done) == 0 {
		return err
	}
	return fmt.Errorf("publish stopped midway: written %s; not written %s: %w", strings.Join(done, ", "), strings.Join(missing, ", "), err)
}
