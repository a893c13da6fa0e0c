package gitmeta

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// BuildTagOptions tune BuildTags.
type BuildTagOptions struct {
	// SemverAliases: a semver git tag also writes its floating aliases
	// (ReleaseTags), except those HeldBack by a higher release in Existing.
	SemverAliases bool
	// RequestPrefix names PR/MR tags: "pr" (GitHub) or "mr" (GitLab).
	// Empty means "pr".
	RequestPrefix string
	// Existing are the tags already in the repository (for HeldBack and
	// IsLatest on tag pipelines). Nil means none.
	Existing []string
}

// BuildTags are the tags a freshly built image gets from its git context:
// the short SHA always; latest on a push to the default branch; on a tag
// pipeline the tag with its semver aliases (same rules as retag: aliases
// only move forward, latest only for the highest stable release); pr-N or
// mr-N for a pull or merge request. Every tag is sanitized and unique.
func BuildTags(c Context, o BuildTagOptions) []string {
	var out []string
	add := func(t string) {
		t = SanitizeTag(t)
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	switch {
	case c.Event == EventTag || c.Tag != "":
		tag := c.Tag
		if tag == "" {
			tag = strings.TrimPrefix(c.Ref, "refs/tags/")
		}
		v, isSemver := ParseVersion(tag)
		held := []string{}
		if isSemver {
			held = HeldBack(v, o.Existing)
		}
		for _, t := range ReleaseTags(tag, o.SemverAliases) {
			if !slices.Contains(held, t) {
				add(t)
			}
		}
		if isSemver && IsLatest(v, o.Existing) {
			add("latest")
		}
	case c.Event == EventPullRequest && c.PullRequest > 0:
		prefix := o.RequestPrefix
		if prefix == "" {
			prefix = "pr"
		}
		add(fmt.Sprintf("%s-%d", prefix, c.PullRequest))
	case c.OnDefaultBranch():
		add("latest")
	}
	if c.SHA != "" {
		add(c.ShortSHA())
	}
	return out
}

// OCILabels are the org.opencontainers.image.* labels of a build:
// source and url (the repository's web URL), revision (the commit),
// created (RFC 3339), version (the git tag, else the branch, else the
// short SHA) and title. Empty values are left out.
func OCILabels(c Context, created time.Time, title string) map[string]string {
	version := c.Tag
	if version == "" {
		version = c.Branch
	}
	if version == "" {
		version = c.ShortSHA()
	}
	m := map[string]string{
		"org.opencontainers.image.source":   c.RepositoryURL,
		"org.opencontainers.image.url":      c.RepositoryURL,
		"org.opencontainers.image.revision": c.SHA,
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.title":    title,
	}
	if !created.IsZero() {
		m["org.opencontainers.image.created"] = created.UTC().Format(time.RFC3339)
	}
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}
