package spec

// RegistryInputs are the inputs every tool that talks to a registry shares:
// credentials and transport settings.
func RegistryInputs() []Input {
	return []Input{
		{Name: "username", Type: String, Description: "Username for the target registry. Takes precedence over every other credential source."},
		{Name: "password", Type: String, Secret: true, Description: "Password or token for the target registry (with `username`)."},
		{Name: "registry-auth", Type: String, Secret: true, Description: "A Docker config JSON (`{\"auths\":{...}}`), raw or base64-encoded, such as a Harbor robot account's `HARBOR_ROBOT_CREDS_JSON`."},
		{Name: "insecure-registries", Type: List, Description: "Registries (host[:port]) reached over plain HTTP or without TLS verification. No other registry is."},
		{Name: "required-variables", Type: List, Description: "Environment variables this job cannot run without, such as `HARBOR_ROBOT_CREDS_JSON`: the run fails at once, naming each one that is unset or empty, before any registry is contacted. Their values are masked."},
		{Name: "http1", Type: Boolean, Default: "false", Description: "Use HTTP/1.1 only (some registries stall on HTTP/2)."},
		{Name: "short-sha-length", Type: Number, GitLabDefault: "8", Description: "Length of the short commit SHA. Default: 8 on GitLab (`CI_COMMIT_SHORT_SHA`), 7 elsewhere."},
	}
}

// OutputPrefixInput names the input every tool has that prefixes its GitLab
// dotenv output variables.
const OutputPrefixInput = "output-prefix"

// OutputInputs are the inputs every tool has, whatever it does: how its
// outputs are named.
func OutputInputs() []Input {
	return []Input{
		{Name: OutputPrefixInput, Type: String, Description: "Prefix of the GitLab dotenv output variables, `<PREFIX>_<OUTPUT>`, so that several jobs of one tool feed a later job without overwriting each other. Default: the job's name (`CI_JOB_NAME`) upper-cased, every run of characters other than letters and digits turned into `_` (job `build-push` → `BUILD_PUSH_DIGEST`, job `build-push:api` → `BUILD_PUSH_API_DIGEST`); without a job name, the tool's. GitLab only: other platforms name outputs per step."},
	}
}
