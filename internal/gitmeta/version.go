package gitmeta

import (
	"fmt"
	"strings"
)

// Version is the version tag a build of c names, the way
// docker/metadata-action's {{version}} does: on a tag pipeline the semver
// without its "v" (v1.4.2 → 1.4.2; a tag that is not semver: the tag
// itself, sanitized), on a pull or merge request <prefix>-N (prefix "pr"
// when empty), elsewhere the short SHA. It is always one of BuildTags(c):
// "" only when c has neither tag, request nor SHA.
func Version(c Context, requestPrefix string) string {
	switch {
	case c.Event == EventTag || c.Tag != "":
		tag := c.Tag
		if tag == "" {
			tag = strings.TrimPrefix(c.Ref, "refs/tags/")
		}
		if v, ok := ParseVersion(tag); ok {
			return SanitizeTag(v.String())
		}
		return SanitizeTag(tag)
	case c.Event == EventPullRequest && c.PullRequest > 0:
		if requestPrefix == "" {
			requestPrefix = "pr"
		}
		return fmt.Sprintf("%s-%d", requestPrefix, c.PullRequest)
	}
	return c.ShortSHA()
}
