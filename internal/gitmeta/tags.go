package gitmeta

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// maxTagLength is the longest tag a registry accepts (distribution spec).
const maxTagLength = 128

var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidateTag reports whether s is a tag a registry accepts.
func ValidateTag(s string) error {
	if !validTag.MatchString(s) {
		return fmt.Errorf("%q is not a valid image tag: use letters, digits, '_', '.' and '-', at most 128 characters, not starting with '.' or '-'", s)
	}
	return nil
}

// SanitizeTag turns a git ref name into a valid image tag the way
// docker/metadata-action does: characters a tag cannot hold become '-',
// leading '.' and '-' are dropped, the result is cut to 128 characters.
// It returns "" when nothing usable is left.
func SanitizeTag(s string) string {
	out := strings.Map(func(c rune) rune {
		if c == '_' || c == '.' || c == '-' ||
			(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			return c
		}
		return '-'
	}, s)
	out = strings.TrimLeft(out, ".-")
	if len(out) > maxTagLength {
		out = out[:maxTagLength]
	}
	return out
}

// ParseVersion parses a release tag as semver: MAJOR.MINOR.PATCH with an
// optional "v" prefix, pre-release and build metadata. Shorter forms
// ("v1", "1.4") are not release versions and return false.
func ParseVersion(tag string) (*semver.Version, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	if err != nil {
		return nil, false
	}
	return v, true
}

// ReleaseTags returns the tags a release tag writes, the tag itself first.
// With aliases, a stable semver tag v1.4.2 also writes 1.4.2, 1.4 and 1
// (no bare "0" for 0.x: a 0.x minor may break anything); a pre-release
// (v1.5.0-rc.1) writes only its own tags (v1.5.0-rc.1, 1.5.0-rc.1). Build
// metadata, which a tag cannot hold, becomes "-" as in SanitizeTag.
func ReleaseTags(tag string, aliases bool) []string {
	out := []string{tag}
	v, ok := ParseVersion(tag)
	if !aliases || !ok {
		return out
	}
	add := func(t string) {
		t = SanitizeTag(t)
		for _, have := range out {
			if have == t {
				return
			}
		}
		out = append(out, t)
	}
	add(v.String())
	if v.Prerelease() != "" {
		return out
	}
	add(fmt.Sprintf("%d.%d", v.Major(), v.Minor()))
	if v.Major() > 0 {
		add(fmt.Sprintf("%d", v.Major()))
	}
	return out
}

// HeldBack returns the floating aliases of version (major.minor, and major
// from 1 on) that must not move because the repository already holds a
// higher stable release in that line: releasing backport 1.3.9 after 1.4.2
// writes 1.3 but leaves 1 on 1.4.2.
func HeldBack(version *semver.Version, existing []string) []string {
	if version == nil || version.Prerelease() != "" {
		return nil
	}
	var minorHeld, majorHeld bool
	for _, t := range existing {
		v, ok := ParseVersion(t)
		if !ok || v.Prerelease() != "" || !v.GreaterThan(version) || v.Major() != version.Major() {
			continue
		}
		majorHeld = true
		if v.Minor() == version.Minor() {
			minorHeld = true
		}
	}
	var held []string
	if minorHeld {
		held = append(held, fmt.Sprintf("%d.%d", version.Major(), version.Minor()))
	}
	if majorHeld && version.Major() > 0 {
		held = append(held, fmt.Sprintf("%d", version.Major()))
	}
	return held
}

// HighestStable returns the highest stable (no pre-release) semver among tags.
func HighestStable(tags []string) (*semver.Version, bool) {
	var best *semver.Version
	for _, t := range tags {
		v, ok := ParseVersion(t)
		if !ok || v.Prerelease() != "" {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best = v
		}
	}
	return best, best != nil
}

// IsLatest reports whether version deserves the "latest" tag in a repository
// that already holds the tags existing: it must be a stable release no lower
// than every stable release there. This is the fix for docker/metadata-action
// #80, where re-releasing an old version moved latest backwards.
func IsLatest(version *semver.Version, existing []string) bool {
	if version == nil || version.Prerelease() != "" {
		return false
	}
	best, ok := HighestStable(existing)
	return !ok || !version.LessThan(best)
}
