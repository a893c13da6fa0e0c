package gitmeta

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		name   string
		ctx    Context
		prefix string
		want   string
	}{
		{"semver tag: without the v", Context{Event: EventTag, Tag: "v1.4.2", SHA: sha}, "", "1.4.2"},
		{"semver tag from the ref", Context{Event: EventTag, Ref: "refs/tags/1.4.2", SHA: sha}, "", "1.4.2"},
		{"prerelease", Context{Event: EventTag, Tag: "v2.0.0-rc.1", SHA: sha}, "", "2.0.0-rc.1"},
		{"build metadata sanitized as the tag is", Context{Event: EventTag, Tag: "v1.0.0+build.7", SHA: sha}, "", "1.0.0-build.7"},
		{"plain tag", Context{Event: EventTag, Tag: "release/spring", SHA: sha}, "", "release-spring"},
		{"merge request", Context{Event: EventPullRequest, PullRequest: 7, SHA: sha}, "mr", "mr-7"},
		{"pull request", Context{Event: EventPullRequest, PullRequest: 7, SHA: sha}, "", "pr-7"},
		{"default branch: the short SHA, not latest", Context{Event: EventPush, Branch: "main", DefaultBranch: "main", SHA: sha, ShortSHALength: 8}, "", "01234567"},
		{"other branch", Context{Event: EventPush, Branch: "feature/x", SHA: sha}, "", "0123456"},
		{"nothing known", Context{}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Version(c.ctx, c.prefix)
			require.Equal(t, c.want, v)
			if v != "" {
				require.Contains(t, BuildTags(c.ctx, BuildTagOptions{SemverAliases: true, RequestPrefix: c.prefix}), v, "the version is one of the tags a build pushes")
			}
		})
	}
}
