package gitmeta

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBuildTags(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		name string
		ctx  Context
		opts BuildTagOptions
		want []string
	}{
		{"default branch", Context{Event: EventPush, Branch: "main", DefaultBranch: "main", SHA: sha}, BuildTagOptions{}, []string{"latest", "0123456"}},
		{"other branch", Context{Event: EventPush, Branch: "feature/x", DefaultBranch: "main", SHA: sha, ShortSHALength: 8}, BuildTagOptions{}, []string{"01234567"}},
		{"pull request", Context{Event: EventPullRequest, PullRequest: 7, SHA: sha}, BuildTagOptions{}, []string{"pr-7", "0123456"}},
		{"merge request", Context{Event: EventPullRequest, PullRequest: 7, SHA: sha}, BuildTagOptions{RequestPrefix: "mr"}, []string{"mr-7", "0123456"}},
		{"semver tag", Context{Event: EventTag, Tag: "v1.4.2", SHA: sha}, BuildTagOptions{SemverAliases: true}, []string{"v1.4.2", "1.4.2", "1.4", "1", "latest", "0123456"}},
		{"backport", Context{Event: EventTag, Tag: "v1.3.9", SHA: sha}, BuildTagOptions{SemverAliases: true, Existing: []string{"1.4.2", "1.3.8"}}, []string{"v1.3.9", "1.3.9", "1.3", "0123456"}},
		{"prerelease", Context{Event: EventTag, Tag: "v2.0.0-rc.1", SHA: sha}, BuildTagOptions{SemverAliases: true}, []string{"v2.0.0-rc.1", "2.0.0-rc.1", "0123456"}},
		{"plain tag", Context{Event: EventTag, Tag: "release", SHA: sha}, BuildTagOptions{SemverAliases: true}, []string{"release", "0123456"}},
		{"no aliases", Context{Event: EventTag, Tag: "v1.4.2", SHA: sha}, BuildTagOptions{}, []string{"v1.4.2", "latest", "0123456"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, BuildTags(c.ctx, c.opts))
		})
	}
}

func TestOCILabels(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := OCILabels(Context{Tag: "v1.0.0", SHA: "abc", RepositoryURL: "https://github.com/o/r"}, at, "r")
	require.Equal(t, map[string]string{
		"org.opencontainers.image.source":   "https://github.com/o/r",
		"org.opencontainers.image.url":      "https://github.com/o/r",
		"org.opencontainers.image.revision": "abc",
		"org.opencontainers.image.version":  "v1.0.0",
		"org.opencontainers.image.title":    "r",
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	}, got)
	require.NotContains(t, OCILabels(Context{}, time.Time{}, ""), "org.opencontainers.image.created")
}
