// Package spec declares, once, the inputs and outputs of every hoist tool.
//
// Everything a user sees about a tool's interface is generated from these
// declarations: the GitHub action.yml files, the spec:inputs header of the
// GitLab CI/CD components, the Azure Pipelines step templates, the CLI flags
// and the README/docs tables. A test fails when a generated file no longer
// matches.
package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Type is the type of an input's value.
type Type string

// Input types. A list accepts items separated by commas or newlines.
const (
	String  Type = "string"
	Boolean Type = "boolean"
	Number  Type = "number"
	List    Type = "list"
	// Lines is a list with one item per line, commas kept (shell commands).
	Lines Type = "lines"
)

// Input is one input of a tool, identical on every surface.
type Input struct {
	// Name is kebab-case: the CLI flag (--name), the GitHub input, the GitLab input.
	Name        string
	Description string
	Type        Type
	// Default is the value used when the input is not given. Empty means
	// "unset"; a default computed at run time is described in Description.
	Default  string
	Required bool
	// Secret inputs are masked before anything is logged and never appear in errors.
	Secret bool
	// Options restricts a string input to these values.
	Options []string
	// GitLabDefault, when set, replaces Default in the GitLab component's
	// spec:inputs (for example "$CI_REGISTRY_IMAGE", expanded by the runner).
	GitLabDefault string
	// AzureDefault, when set, replaces Default in the Azure Pipelines step
	// template's parameters.
	AzureDefault string
	// Aliases are extra CLI flag names accepted for compatibility (kaniko's
	// --destination for --tags, say). They are not GitHub or GitLab inputs.
	Aliases []string
}

// Output is one output of a tool.
type Output struct {
	Name        string
	Description string
}

// Tool is the declared interface of one hoist tool.
type Tool struct {
	// Name is the binary, the action directory and the template name (kebab-case).
	Name string
	// Title is a one-line summary.
	Title string
	// Description is the action's description (one sentence).
	Description string
	// Stage is the default GitLab stage of the tool's component job.
	Stage string
	// Icon and Color brand the GitHub action on the Marketplace: a Feather
	// icon name and a badge color (see GitHub's metadata syntax). Empty
	// means "box" and "blue".
	Icon    string
	Color   string
	Inputs  []Input
	Outputs []Output
}

// Input returns the named input, or false.
func (t Tool) Input(name string) (Input, bool) {
	for _, in := range t.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// EnvName is the variable the GitLab component job sets for an input:
// INPUT_ and the name in UPPER_SNAKE case (cache-repo → INPUT_CACHE_REPO).
func (in Input) EnvName() string {
	return "INPUT_" + UpperSnake(in.Name)
}

// GitHubEnvName is the variable the GitHub runner sets for an input:
// INPUT_ and the name upper-cased, hyphens kept (cache-repo → INPUT_CACHE-REPO).
func (in Input) GitHubEnvName() string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(in.Name, " ", "_"))
}

// DotenvName is the key of an output in a GitLab dotenv report: the tool's
// name and the output's, UPPER_SNAKE (build-push, digest → BUILD_PUSH_DIGEST).
func (t Tool) DotenvName(output string) string {
	return UpperSnake(t.Name) + "_" + UpperSnake(output)
}

// UpperSnake turns kebab-case into UPPER_SNAKE case.
func UpperSnake(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// Validate checks a declaration for mistakes a generator would propagate,
// including those GitHub or GitLab would only report when a pipeline runs.
func (t Tool) Validate() error {
	if !isKebab(t.Name) {
		return fmt.Errorf("tool %q: names are kebab-case", t.Name)
	}
	if t.Description == "" || t.Title == "" || t.Stage == "" {
		return fmt.Errorf("tool %s: Title, Description and Stage are required", t.Name)
	}
	reserved := map[string]string{}
	for _, in := range ComponentInputs(t) {
		reserved[in.Name] = "the GitLab component's own input"
	}
	for _, in := range AzureTemplateParameters(t) {
		reserved[in.Name] = "the Azure Pipelines template's own parameter"
	}
	seen := map[string]bool{}
	for _, in := range t.Inputs {
		if !isKebab(in.Name) {
			return fmt.Errorf("tool %s: input %q: names are kebab-case", t.Name, in.Name)
		}
		if seen[in.Name] {
			return fmt.Errorf("tool %s: input %q declared twice", t.Name, in.Name)
		}
		seen[in.Name] = true
		if what, ok := reserved[in.Name]; ok {
			return fmt.Errorf("tool %s: input %q collides with %s of that name; rename it", t.Name, in.Name, what)
		}
		if err := in.validate(); err != nil {
			return fmt.Errorf("tool %s: input %q: %w", t.Name, in.Name, err)
		}
	}
	outs := map[string]bool{}
	for _, out := range t.Outputs {
		if !isKebab(out.Name) {
			return fmt.Errorf("tool %s: output %q: names are kebab-case", t.Name, out.Name)
		}
		if outs[out.Name] {
			return fmt.Errorf("tool %s: output %q declared twice", t.Name, out.Name)
		}
		outs[out.Name] = true
		if out.Description == "" {
			return fmt.Errorf("tool %s: output %q has no description", t.Name, out.Name)
		}
	}
	return nil
}

func (in Input) validate() error {
	switch in.Type {
	case String, Boolean, Number, List, Lines:
	default:
		return fmt.Errorf("unknown type %q", in.Type)
	}
	if in.Description == "" {
		return fmt.Errorf("no description")
	}
	if in.Required && (in.Default != "" || in.GitLabDefault != "" || in.AzureDefault != "") {
		return fmt.Errorf("required and has a default")
	}
	for _, def := range []string{in.Default, in.GitLabDefault, in.AzureDefault} {
		if def == "" {
			continue
		}
		switch in.Type {
		case Boolean:
			if def != "true" && def != "false" {
				return fmt.Errorf("boolean default %q (want true or false)", def)
			}
		case Number:
			if _, err := strconv.ParseFloat(def, 64); err != nil {
				return fmt.Errorf("number default %q is not a number", def)
			}
		}
	}
	if len(in.Options) > 0 {
		if in.Type != String {
			return fmt.Errorf("options are only for string inputs (GitLab allows them on strings and numbers, GitHub on none)")
		}
		if !in.Required && in.Default == "" && in.GitLabDefault == "" {
			return fmt.Errorf("an optional input with options needs a default: GitLab rejects an empty default that is not an option")
		}
		for _, def := range []string{in.Default, in.GitLabDefault, in.AzureDefault} {
			if def != "" && !contains(in.Options, def) {
				return fmt.Errorf("default %q is not one of %v", def, in.Options)
			}
		}
	}
	return nil
}

func isKebab(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return s[0] >= 'a' && s[0] <= 'z'
}

// ComponentInputs are the inputs every GitLab component has besides the
// tool's own: they shape the job, not the tool, and exist only on GitLab.
func ComponentInputs(t Tool) []Input {
	return []Input{
		{Name: "job-name", Type: String, Default: t.Name, Description: "Name of the job the component adds."},
		{Name: "stage", Type: String, Default: t.Stage, Description: "Stage the job runs in."},
		{Name: "job-image", Type: String, Default: ComponentImage(), Description: "Image the job runs: hoist's, with every tool and a shell. The default is the image of the version you include (`@" + Version + "` runs `" + Image() + "`); set it when you include the component by commit SHA or branch, for which GitLab names no version."},
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Tools returns every tool's declaration, in the order the docs list them.
func Tools() []Tool {
	return []Tool{BuildPush(), Retag(), Gate(), Bump(), Publish()}
}
