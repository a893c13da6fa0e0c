package spec

// Bump declares the bump tool.
func Bump() Tool {
	return Tool{
		Name:        "bump",
		Title:       "Bump image references in GitOps manifests, byte-exact, and land the commit",
		Description: "Rewrite the image references you name in kustomize, workload, Helm values, Flux and Argo CD manifests, changing nothing else, and commit them to the GitOps repository without losing a concurrent update.",
		Stage:       "deploy",
		Icon:        "git-commit",
		Color:       "green",
		Inputs: append([]Input{
			{Name: "images", Type: List, Description: "Entries `name=newref`: every reference to the repository `name` (with or without registry host) gets `newref`, which is a tag, `@digest`, `tag@digest`, `repo:tag`, `repo@digest` or `repo:tag@digest`. A bare reference `repo:tag`, `repo@digest` or `repo:tag@digest` (build-push's and retag's `ref` output) is `repo=` itself."},
			{Name: "images-from", Type: List, Description: "Files or globs, relative to the workspace, read for more `images` entries: every non-empty line of every file is one (build-push's and retag's `ref-file`). A glob that matches no file fails the run unless `allow-no-match`."},
			{Name: "image", Type: String, Description: "One more image to bump, as build-push outputs it: a repository, or a reference whose tag or digest is used unless `tag`/`digest` are given."},
			{Name: "tag", Type: String, Description: "Tag for `image`."},
			{Name: "digest", Type: String, Description: "Digest for `image` (`sha256:...`)."},
			{Name: "paths", Type: List, Description: "Files, directories or globs (`deploy/**/*.yaml`) to edit, relative to the repository. Default: the whole repository. Paths and symlinks leading outside it are refused."},
			{Name: "allow-no-match", Type: Boolean, Default: "false", Description: "Let bump pass, with a warning, when a `paths` entry or an `images-from` glob matches no file, or when no selected file references an image it was asked to bump (an image already at its new reference is referenced: a rerun passes). Default: each of these fails the run, so a typo never leaves a deploy silently undone."},
			{Name: "value-paths", Type: List, Description: "Explicit Helm value paths, `[image=]global.image.tag[:part]`; part is `ref`, `name`, `tag` or `digest`, by default taken from the last key. `image` names the images entry (needed when there are several)."},
			{Name: "pin", Type: String, Default: "auto", Options: []string{"auto", "tag", "digest", "tag-and-digest"}, Description: "What is written: `auto` what the new reference has; `tag`, `digest` or both (the new reference must have them)."},
			{Name: "mode", Type: String, Default: "commit", Options: []string{"commit", "pull-request", "dry-run"}, Description: "`commit` pushes a commit to `branch`; `pull-request` pushes it to `hoist/bump/<image>` and opens or updates a GitHub pull request or GitLab merge request into `branch` (a branch whose request was merged or closed is not reused); `dry-run` prints a unified diff and writes nothing."},
			{Name: "repository", Type: String, GitLabDefault: "$CI_SERVER_URL/$CI_PROJECT_PATH.git", Description: "GitOps repository to commit to: an https URL (with `token`), an ssh URL (with `ssh-key`), git:// or a local path. Default: the current checkout's origin (GitLab: this project over `CI_SERVER_URL`)."},
			{Name: "branch", Type: String, Description: "Branch to commit to. Default: the checkout's branch, else the repository's default branch."},
			{Name: "token", Type: String, Secret: true, GitLabDefault: "$HOIST_BUMP_TOKEN", Description: "Token that may push over https (GitHub: a token with contents: write; GitLab: a project or personal access token with write_repository, from a masked CI/CD variable, by default `HOIST_BUMP_TOKEN`)."},
			{Name: "git-username", Type: String, Default: "x-access-token", GitLabDefault: "oauth2", Description: "User name sent with `token` over https."},
			{Name: "ssh-key", Type: String, Secret: true, Description: "Private key (OpenSSH or PEM, no passphrase) for an ssh `repository`."},
			{Name: "ssh-known-hosts", Type: String, Description: "known_hosts lines for the ssh host. Default: ~/.ssh/known_hosts."},
			{Name: "author", Type: String, Default: "hoist-bot <hoist-bot@users.noreply.github.com>", Description: "Commit author and committer, `Name <email>`."},
			{Name: "signing-key", Type: String, Secret: true, Description: "Private key that signs the commit, detected by its form: an armored OpenPGP key (`gpg --armor --export-secret-keys KEYID`, git's default `gpg.format`) or an OpenSSH private key (an SSH signature, git's `gpg.format=ssh`, namespace `git`). Default: unsigned. The platform must know the public key (GitHub: a signing key of the author's account; the author's email must match it) for the commit to show as verified."},
			{Name: "signing-key-passphrase", Type: String, Secret: true, Description: "Passphrase of an encrypted `signing-key`."},
			{Name: "message", Type: String, GitLabDefault: "chore(deploy): bump {{.Image}} to {{.Version}} [skip ci]", Description: "Commit message template (Go text/template) with `.Image`, `.Tag`, `.Digest`, `.Version`, `.Old`, `.New`, `.SourceCommit`, `.Files`. Default: `chore(deploy): bump {{.Image}} to {{.Version}}` (GitLab: with `[skip ci]`, so a bump of the project's own repository starts no pipeline); a list of the changes and the source commit follow."},
			{Name: "labels", Type: List, Description: "Labels for the pull or merge request."},
			{Name: "forge", Type: String, Default: "auto", Options: []string{"auto", "github", "gitlab"}, Description: "API the pull-request mode talks to; `auto`: GitHub for a github host, else GitLab."},
			{Name: "api-url", Type: String, GitLabDefault: "$CI_API_V4_URL", Description: "API root for pull-request mode. Default: `GITHUB_API_URL` on GitHub, `CI_API_V4_URL` on GitLab, else derived from `repository`."},
			{Name: "max-attempts", Type: Number, Default: "5", Description: "Attempts to land when the branch moves under the push: each one starts again from the new tip after a jittered backoff. Never forced."},
		}, OutputInputs()...),
		Outputs: []Output{
			{Name: "changed", Description: "`true` when a file was (or, in a dry run, would be) changed."},
			{Name: "files", Description: "Files changed, comma-separated, relative to the repository."},
			{Name: "commit", Description: "SHA of the commit pushed; empty when nothing changed or in a dry run."},
			{Name: "pull-request-url", Description: "URL of the pull or merge request opened or updated (pull-request mode)."},
		},
	}
}
