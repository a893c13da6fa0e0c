package spec

import (
	"fmt"
	"regexp"
	"strings"
)

// Version is hoist's release version: the release this tree is, or is about
// to become. The release workflow refuses a git tag other than v<Version>,
// so every file generated from it names the image of its own release:
//
//   - GitHub container actions run docker://ghcr.io/hoist-ci/hoist:<Version>
//     (uses: hoist-ci/hoist/actions/<tool>@v0.2.0, or the moving @v0);
//   - Azure Pipelines templates run the same image and are referenced as
//     refs/tags/v<Version>;
//   - GitLab components run ghcr.io/hoist-ci/hoist:$[[ component.version ]]:
//     the version the pipeline included (@0.2.0, or @0 resolved by GitLab).
const Version = "0.2.0"

// ImageRepository is where the one hoist image is published.
const ImageRepository = "ghcr.io/hoist-ci/hoist"

// stamped is the version the release build writes into the binaries
// (go build -ldflags "-X github.com/hoist-ci/hoist/internal/spec.stamped=0.2.0",
// make build VERSION=0.2.0). Empty in a development build.
var stamped string

// Image is the image reference the generated actions and components run.
func Image() string { return ImageRepository + ":" + Version }

// VersionVariable is the job variable a GitLab component sets to
// $[[ component.version ]] (the version its pipeline included, resolved by
// GitLab: @0 → 0.2.3); its default job image names it, and the runner
// expands it when it pulls the image.
const VersionVariable = "HOIST_VERSION"

// ComponentImage is the default image of a GitLab component's job: hoist's
// image of the included version. GitLab leaves component.version empty when
// a component is included by commit SHA or branch: then set job-image.
func ComponentImage() string { return ImageRepository + ":${" + VersionVariable + "}" }

// MajorTag is the moving git tag GitHub users pin (uses: ...@v0): the
// release workflow moves it to every release of that major version.
func MajorTag() string {
	major, _, _ := strings.Cut(Version, ".")
	return "v" + major
}

// BinaryVersion is the version a binary reports (--version, the user agent):
// the version stamped by the release build, else Version with "-dev".
func BinaryVersion() string {
	if stamped != "" {
		return stamped
	}
	return Version + "-dev"
}

// UserAgent is sent to registries and APIs.
func UserAgent() string { return "hoist/" + BinaryVersion() }

var semver = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// ReleaseVersion is the version a release git tag names: v0.2.0 → 0.2.0. It
// fails unless the tag is v<major>.<minor>.<patch>.
func ReleaseVersion(tag string) (string, error) {
	v, ok := strings.CutPrefix(tag, "v")
	if !ok || !semver.MatchString(v) {
		return "", fmt.Errorf("release tag %q is not v<major>.<minor>.<patch> (such as v%s)", tag, Version)
	}
	return v, nil
}
