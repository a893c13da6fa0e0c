package spec

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// AzureTemplatePath is where a tool's Azure Pipelines step template lives.
func AzureTemplatePath(t Tool) string { return "templates/azure/" + t.Name + ".yml" }

// AzureStepName is the default name of the template's step: the prefix of
// its output variables ($(build_push.digest)). Azure step names take
// letters, digits and underscores.
func AzureStepName(t Tool) string { return strings.ReplaceAll(t.Name, "-", "_") }

// AzureTemplateParameters are the parameters every Azure Pipelines step
// template has besides the tool's inputs: they shape the step, not the
// tool.
func AzureTemplateParameters(t Tool) []Input {
	return []Input{
		{Name: "name", Type: String, Default: AzureStepName(t), Description: "Name of the step: its outputs are `$(<name>.<output>)` later in the job, `dependencies.<job>.outputs['<name>.<output>']` in later jobs, `stageDependencies.<stage>.<job>.outputs['<name>.<output>']` in later stages. Letters, digits and underscores."},
		{Name: "display-name", Type: String, Default: t.Name, Description: "Name of the step in the run's log."},
		{Name: "condition", Type: String, Default: "succeeded()", Description: "When the step runs (an Azure Pipelines condition)."},
		{Name: "hoist-image", Type: String, Description: "Run the tool in this image (such as `" + Image() + "`) with `docker run` on the agent, which needs Docker. Empty: run the `" + t.Name + "` binary found on the PATH — on the agent, or in the job's container."},
		{Name: "env", Type: String, Description: "More environment variables for the step, as a mapping: credentials the tool reads (`AWS_SECRET_ACCESS_KEY: $(awsSecretKey)`: secret variables reach a step only this way), `HOIST_DEFAULT_BRANCH`, `HOIST_DEBUG`."},
	}
}

// azureDockerEnv are the variables a docker-run step passes into hoist's
// container (by name: the values never reach a command line): the inputs,
// the agent's variables hoist reads, and the credentials it may use.
const azureDockerEnv = "INPUT_*|TF_BUILD|BUILD_*|SYSTEM_*|AGENT_*|HOIST_*|SOURCE_DATE_EPOCH|DOCKER_CONFIG|DOCKER_AUTH_CONFIG|" +
	"AWS_*|S3_*|AZURE_*|GOOGLE_*|GCE_METADATA_HOST|STORAGE_EMULATOR_HOST|GIT_USERNAME|GIT_PASSWORD|GIT_TOKEN|GIT_PULL_METHOD|" +
	"HTTP_PROXY|HTTPS_PROXY|NO_PROXY|http_proxy|https_proxy|no_proxy"

// AzureTemplate renders a tool's Azure Pipelines step template: typed
// parameters named like the tool's inputs (plus AzureTemplateParameters),
// and one step that runs the tool with each parameter in an INPUT_
// variable — the binary on the PATH, or hoist's image with docker run.
func AzureTemplate(t Tool) ([]byte, error) {
	params := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	own := AzureTemplateParameters(t)
	for i, in := range append(append([]Input(nil), t.Inputs...), own...) {
		p, err := azureParameter(in)
		if err != nil {
			return nil, fmt.Errorf("rendering the Azure Pipelines parameter %s of %s: %w", in.Name, t.Name, err)
		}
		if i == len(t.Inputs) {
			p.HeadComment = "The template's own parameters: the step, not the tool.\n" + p.HeadComment
		}
		params.Content = append(params.Content, p)
	}

	env := mapping(str("${{ each pair in parameters.env }}"), mapping(str("${{ pair.key }}"), str("${{ pair.value }}")))
	for _, in := range t.Inputs {
		env.Content = append(env.Content, str(in.EnvName()), str("${{ "+azureRef(in.Name)+" }}"))
	}
	step := func(script string) *yaml.Node {
		return mapping(
			str("script"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: script, Style: literalIfMultiline(script)},
			str("name"), str("${{ parameters.name }}"),
			str("displayName"), str("${{ "+azureRef("display-name")+" }}"),
			str("condition"), str("${{ parameters.condition }}"),
			str("env"), env,
		)
	}
	steps := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{
		mapping(str("${{ if eq(parameters['hoist-image'], '') }}"), &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{step(t.Name)}}),
		mapping(str("${{ else }}"), &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{step(azureDockerScript(t))}}),
	}}
	doc := mapping(str("parameters"), params, str("steps"), steps)
	doc.HeadComment = azureHeader(t)
	body, err := encodeYAML(doc)
	if err != nil {
		return nil, fmt.Errorf("rendering the Azure Pipelines template of %s: %w", t.Name, err)
	}
	return body, nil
}

// azureRef is a template expression's reference to a parameter: index
// syntax, as a name with a hyphen is not an identifier.
func azureRef(name string) string {
	if strings.Contains(name, "-") {
		return "parameters['" + name + "']"
	}
	return "parameters." + name
}

func literalIfMultiline(s string) yaml.Style {
	if strings.Contains(s, "\n") {
		return yaml.LiteralStyle
	}
	return 0
}

// azureDockerScript runs the tool in hoist's image on the agent: the
// workspace and the agent's temporary directory mounted at the same paths
// (summaries and reports are read from there), the host's network (a
// registry on the agent's loopback stays reachable), the variables named
// in azureDockerEnv passed by name.
func azureDockerScript(t Tool) string {
	return `set -eu
args=()
for name in $(compgen -e); do
  case "$name" in
    ` + azureDockerEnv + `) args+=(--env "$name") ;;
  esac
done
exec docker run --rm --network host \
  --volume "$BUILD_SOURCESDIRECTORY:$BUILD_SOURCESDIRECTORY" \
  --volume "$AGENT_TEMPDIRECTORY:$AGENT_TEMPDIRECTORY" \
  --workdir "$PWD" "${args[@]}" \
  --entrypoint /usr/local/bin/` + t.Name + ` \
  "${{ parameters['hoist-image'] }}"
`
}

func azureHeader(t Tool) string {
	return GeneratedHeader + ".\n" +
		"hoist " + t.Name + " as an Azure Pipelines step: " + sentence(t.Description) + "\n" +
		"\n" +
		"  resources:\n" +
		"    repositories:\n" +
		"    - repository: hoist\n" +
		"      type: github\n" +
		"      name: hoist-ci/hoist\n" +
		"      ref: refs/tags/v" + Version + "\n" +
		"      endpoint: github   # a GitHub service connection\n" +
		"  steps:\n" +
		"  - template: " + AzureTemplatePath(t) + "@hoist\n" +
		"    parameters:\n" +
		"      " + azureExample(t) + "\n" +
		"\n" +
		"Each parameter is the tool's input of the same name (docs/" + t.Name + ".md) and\n" +
		"reaches it as INPUT_<NAME>; $(variables) in values are expanded by the agent.\n" +
		"Outputs are output variables of the step (parameter name, default " + AzureStepName(t) + "):\n" +
		"$(" + AzureStepName(t) + ".<output>) later in the job, dependencies.<job>.outputs['" + AzureStepName(t) + ".<output>']\n" +
		"in later jobs, stageDependencies.<stage>.<job>.outputs['" + AzureStepName(t) + ".<output>'] in\n" +
		"later stages. See docs/azure.md."
}

func azureExample(t Tool) string {
	for _, in := range t.Inputs {
		if in.Required {
			return in.Name + ": ..."
		}
	}
	if len(t.Inputs) > 0 {
		return t.Inputs[0].Name + ": ..."
	}
	return "{}"
}

// azureParameter is one entry of a template's parameters: a typed value
// with a default (a parameter without one is required), its description as
// a comment. A boolean or number input with no default is a string (the
// tool reads an empty value as unset), as on GitLab.
func azureParameter(in Input) (*yaml.Node, error) {
	def := in.AzureDefault
	if def == "" {
		def = in.Default
	}
	typ := "string"
	defNode := str(def)
	switch in.Type {
	case Boolean:
		if def != "" {
			typ, defNode = "boolean", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: def}
		}
	case Number:
		if def != "" {
			if _, err := strconv.ParseFloat(def, 64); err != nil {
				return nil, fmt.Errorf("number default %q", def)
			}
			typ, defNode = "number", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: def}
			if _, err := strconv.ParseInt(def, 10, 64); err != nil {
				defNode.Tag = "!!float"
			}
		}
	}
	if in.Name == "env" {
		typ, defNode = "object", mapping()
		defNode.Style = yaml.FlowStyle
	}
	p := mapping(str("name"), str(in.Name), str("type"), str(typ))
	if !in.Required {
		p.Content = append(p.Content, str("default"), defNode)
	}
	if len(in.Options) > 0 {
		vals := sequence()
		for _, o := range in.Options {
			vals.Content = append(vals.Content, str(o))
		}
		p.Content = append(p.Content, str("values"), vals)
	}
	desc := githubDescription(Input{Name: in.Name, Type: in.Type, Description: in.Description, Options: in.Options, Default: def, Secret: in.Secret})
	if in.Secret {
		desc += " Pass a secret variable: `$(name)`."
	}
	if in.Type == Boolean && def == "" {
		desc += " Empty for the behaviour described."
	}
	p.HeadComment = wrapComment(desc, 78)
	return p, nil
}

// wrapComment wraps text into lines of at most width columns.
func wrapComment(text string, width int) string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
