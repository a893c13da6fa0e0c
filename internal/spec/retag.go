package spec

// Retag declares the retag tool.
func Retag() Tool {
	return Tool{
		Name:        "retag",
		Title:       "Give an already-built image its release tags without rebuilding",
		Description: "Tag an image already in a registry (1.4.2, 1.4, 1, latest) without rebuilding, or promote it to another registry.",
		Stage:       "deploy",
		Icon:        "tag",
		Color:       "blue",
		Inputs: append([]Input{
			{Name: "source", Type: String, Description: "Image to retag (`repo:tag` or `repo@digest`). Default: `<image>:<short sha>`."},
			{Name: "image", Type: String, Description: "Repository the tags are written to. Default: the source's repository; with no source either, the project's own (`$CI_REGISTRY_IMAGE` on GitLab, `ghcr.io/<owner>/<repo>` on GitHub)."},
			{Name: "tags", Type: List, Description: "Tags to write. Default on a tag pipeline: the git tag. Elsewhere a tag is required."},
			{Name: "semver-aliases", Type: Boolean, Default: "true", Description: "A semver tag `v1.4.2` also writes `1.4.2`, `1.4` and `1` (no `0` for 0.x); `1.4` and `1` only move forward, so a backport leaves them on a higher release; a pre-release writes only its own tags."},
			{Name: "latest", Type: String, Default: "auto", Options: []string{"auto", "true", "false"}, Description: "Also write `latest`: `auto` only when this version is the highest stable semver in the repository."},
			{Name: "destination", Type: List, Description: "Repositories to promote into (another registry or repository). Blobs are mounted or copied only when missing; an index is copied byte for byte."},
			{Name: "expect-digest", Type: String, Description: "Refuse to retag unless the source resolves to this digest (`sha256:...`)."},
			{Name: "dry-run", Type: Boolean, Default: "false", Description: "Print the source digest and every tag that would be written; write nothing."},
			{Name: "ref-file", Type: String, Description: "Write the `ref` output (`repo:version@sha256:...`) and a newline to this file: bump's `images-from` reads it."},
		}, append(RegistryInputs(), OutputInputs()...)...),
		Outputs: []Output{
			{Name: "digest", Description: "Digest of the retagged manifest (`sha256:...`)."},
			{Name: "image", Description: "The image by digest (`repo@sha256:...`), in the first target repository."},
			{Name: "tags", Description: "Full references written, comma-separated."},
			{Name: "version", Description: "The version tag written: `1.4.2` for the git tag `v1.4.2` (semver without the `v`), else the git tag; with `tags`, the first one."},
			{Name: "ref", Description: "`<first target repository>:<version>@sha256:...`: the reference a GitOps bump pins (bump's `image` or `images-from`)."},
		},
	}
}
