// Package spec declares, once, the inputs and outputs of every hoist tool.
//
// Everything a user sees about a tool's interface is generated from these
// declarations: the GitHub action.yml files, the spec:inputs header of the
// GitLab CI/CD components, the CLI flags and the README/docs tables. A test
// fails when a generated file no longer matches.
package spec

import (
	"fmt"
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
	Stage   string
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

// Validate checks a declaration for mistakes a generator would propagate.
func (t Tool) Validate() error {
	seen := map[string]bool{}
	for _, in := range t.Inputs {
		if in.Name == "" || in.Name != strings.ToLower(in.Name) || strings.ContainsAny(in.Name, " _") {
			return fmt.Errorf("tool %s: input %q: names are kebab-case", t.Name, in.Name)
		}
		if seen[in.Name] {
			return fmt.Errorf("tool %s: input %q declared twice", t.Name, in.Name)
		}
		seen[in.Name] = true
		switch in.Type {
		case String, Boolean, Number, List:
		default:
			return fmt.Errorf("tool %s: input %q: unknown type %q", t.Name, in.Name, in.Type)
		}
		if in.Description == "" {
			return fmt.Errorf("tool %s: input %q has no description", t.Name, in.Name)
		}
		if in.Required && in.Default != "" {
			return fmt.Errorf("tool %s: input %q is required and has a default", t.Name, in.Name)
		}
		if len(in.Options) > 0 && in.Default != "" && !contains(in.Options, in.Default) {
			return fmt.Errorf("tool %s: input %q: default %q is not one of %v", t.Name, in.Name, in.Default, in.Options)
		}
		if in.Type == Boolean && in.Default != "" && in.Default != "true" && in.Default != "false" {
			return fmt.Errorf("tool %s: input %q: boolean default %q", t.Name, in.Name, in.Default)
		}
	}
	outs := map[string]bool{}
	for _, out := range t.Outputs {
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
	return []Tool{Retag()}
}
