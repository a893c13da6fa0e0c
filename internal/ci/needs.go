package ci

import (
	"fmt"
	"strings"

	"github.com/hoist-ci/hoist/internal/need"
)

// RegistryCredential is the credential the platform itself provides for a
// registry host: GitLab's CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for
// $CI_REGISTRY, GitHub's GITHUB_TOKEN (as GITHUB_ACTOR) for ghcr.io. The
// registry client asks after the inputs and Docker configs.
func (j *Job) RegistryCredential(host string) (username, password, source string, ok bool) {
	if r := j.Getenv("CI_REGISTRY"); r != "" && sameHost(r, host) {
		if u, p := j.Getenv("CI_REGISTRY_USER"), j.Getenv("CI_REGISTRY_PASSWORD"); u != "" && p != "" {
			return u, p, "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD", true
		}
	}
	if strings.EqualFold(host, "ghcr.io") {
		if tok := j.Getenv("GITHUB_TOKEN"); tok != "" {
			user := j.Getenv("GITHUB_ACTOR")
			if user == "" {
				user = "x-access-token"
			}
			return user, tok, "GITHUB_TOKEN", true
		}
	}
	return "", "", "", false
}

func sameHost(a, b string) bool {
	norm := func(h string) string {
		h = strings.ToLower(strings.TrimSpace(h))
		h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
		return strings.TrimSuffix(h, "/")
	}
	return norm(a) == norm(b)
}

// Fix is how to provide what an error says is missing (see need), on the
// platform the job runs on; "" when there is nothing platform-specific to
// add. Main adds it to the error it reports.
func (j *Job) Fix(err error) string {
	if err == nil {
		return ""
	}
	kind, subject, ok := need.Of(err)
	if !ok {
		return ""
	}
	p := j.Platform
	switch kind {
	case need.Variable:
		return map[Platform]string{
			PlatformGitHub: fmt.Sprintf("on GitHub, set it on the step: env: %s: ${{ secrets.%s }}", subject, subject),
			PlatformGitLab: fmt.Sprintf("on GitLab, define %s as a masked CI/CD variable (Settings > CI/CD > Variables)", subject),
			PlatformAzure:  fmt.Sprintf("on Azure Pipelines, define %s as a secret variable and map it on the step: env: %s: $(%s)", subject, subject, subject),
			PlatformLocal:  fmt.Sprintf("export %s before running", subject),
		}[p]
	case need.FileVariable:
		if p == PlatformGitLab {
			return fmt.Sprintf("on GitLab a file CI/CD variable gives a path: %s=file:$VARIABLE", subject)
		}
		return ""
	case need.History:
		return map[Platform]string{
			PlatformGitHub: "on GitHub, check out with actions/checkout's fetch-depth: 0",
			PlatformGitLab: "on GitLab, set the variable GIT_DEPTH: 0 on the job",
			PlatformAzure:  "on Azure Pipelines, check out with fetchDepth: 0 (- checkout: self)",
			PlatformLocal:  "fetch more history: git fetch --unshallow",
		}[p]
	case need.RegistryRead, need.RegistryPush:
		return j.registryFix(kind, subject)
	case need.TagPipeline:
		return map[Platform]string{
			PlatformGitHub: "on GitHub, run it on tags: on: push: tags: ['v*']",
			PlatformGitLab: "on GitLab, run the job on tag pipelines: rules: - if: $CI_COMMIT_TAG",
			PlatformAzure:  "on Azure Pipelines, trigger on tags: trigger: tags: include: ['v*']",
		}[p]
	case need.RepositoryToken:
		return map[Platform]string{
			PlatformGitHub: "on GitHub, give a token that may push: secrets.GITHUB_TOKEN with permissions: contents: write for this repository, a fine-grained token for another",
			PlatformGitLab: "on GitLab, define a masked CI/CD variable (by default HOIST_BUMP_TOKEN) holding a project access token with write_repository",
			PlatformAzure:  "on Azure Pipelines, pass $(System.AccessToken) and allow the build service to contribute to the repository",
		}[p]
	}
	return ""
}

// registryFix is how to give a registry credentials on this platform.
func (j *Job) registryFix(kind need.Kind, host string) string {
	verb := "read"
	if kind == need.RegistryPush {
		verb = "push to"
	}
	switch j.Platform {
	case PlatformGitHub:
		if strings.EqualFold(host, "ghcr.io") {
			scope := "packages: read"
			if kind == need.RegistryPush {
				scope = "packages: write"
			}
			return fmt.Sprintf("on GitHub, pass the token to the step (env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}) and grant the job permissions: %s", scope)
		}
		return fmt.Sprintf("on GitHub, pass credentials that may %s %s from repository secrets: username: ${{ secrets.REGISTRY_USER }}, password: ${{ secrets.REGISTRY_PASSWORD }}", verb, host)
	case PlatformGitLab:
		if r := j.Getenv("CI_REGISTRY"); r != "" && sameHost(r, host) {
			return fmt.Sprintf("on GitLab, CI_REGISTRY_USER/CI_REGISTRY_PASSWORD apply to %s: check that the job token may %s this project (Settings > CI/CD > Job token permissions)", host, verb)
		}
		return fmt.Sprintf("on GitLab, give registry-auth from a masked CI/CD variable holding a Docker config JSON for %s (a Harbor robot account's HARBOR_ROBOT_CREDS_JSON, raw or base64)", host)
	case PlatformAzure:
		return fmt.Sprintf("on Azure Pipelines, pass the credentials of a service connection or variable group that may %s %s as username and password (secret variables mapped in env:)", verb, host)
	}
	return ""
}
