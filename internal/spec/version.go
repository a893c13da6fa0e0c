package spec

// Version is hoist's release version. The generated action.yml files and
// GitLab components run the image tagged with it.
const Version = "0.1.0"

// ImageRepository is where the one hoist image is published.
const ImageRepository = "ghcr.io/hoist-ci/hoist"

// Image is the image reference the generated actions and components run.
func Image() string { return ImageRepository + ":" + Version }

// UserAgent is sent to registries and APIs.
func UserAgent() string { return "hoist/" + Version }
