package spec

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Markers of the generated region inside a component job's variables.
const (
	BeginInputsMarker = "# BEGIN generated inputs"
	EndInputsMarker   = "# END generated inputs"
)

// gitlabDescriptionLimit is GitLab's maximum length of an input description.
const gitlabDescriptionLimit = 1024

// TemplateHeader renders the first YAML document of a tool's GitLab CI/CD
// component: its spec:inputs, the tool's inputs then the component's own
// (ComponentInputs). It ends with the document separator.
//
// GitLab makes an input without a default mandatory, so every optional input
// gets one: GitLabDefault, else Default, else the empty string. A boolean or number input
// with no default at all is declared a string (GitLab rejects an empty
// boolean or number default) and the tool reads an empty value as unset.
func TemplateHeader(t Tool) ([]byte, error) {
	inputs := mapping()
	all := append(slices.Clone(t.Inputs), ComponentInputs(t)...)
	for i, in := range all {
		fields, err := gitlabInput(in)
		if err != nil {
			return nil, fmt.Errorf("rendering the GitLab input %s of %s: %w", in.Name, t.Name, err)
		}
		key := str(in.Name)
		if i == len(t.Inputs) {
			key.HeadComment = "The component's own inputs: the job, not the tool."
		}
		inputs.Content = append(inputs.Content, key, fields)
	}
	// component: [version] makes $[[ component.version ]] available to the
	// job (TemplateVariables).
	doc := mapping(str("spec"), mapping(str("component"), sequence(str("version")), str("inputs"), inputs))
	doc.HeadComment = GeneratedHeader + ".\n" +
		"The job after the --- line is hand-written; only the variables between\n" +
		"the BEGIN/END generated inputs markers are generated."
	body, err := encodeYAML(doc)
	if err != nil {
		return nil, fmt.Errorf("rendering the spec:inputs of %s: %w", t.Name, err)
	}
	return append(body, "---\n"...), nil
}

func gitlabInput(in Input) (*yaml.Node, error) {
	def := in.GitLabDefault
	if def == "" {
		def = in.Default
	}
	typ := "string"
	var defNode *yaml.Node
	parts := []string{sentence(in.Description)}
	switch in.Type {
	case Boolean:
		if def != "" {
			typ, defNode = "boolean", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: def}
		} else {
			parts = append(parts, "`true`, `false`, or empty for the behaviour described.")
		}
	case Number:
		if def != "" {
			tag := "!!float"
			if _, err := strconv.ParseInt(def, 10, 64); err == nil {
				tag = "!!int"
			}
			typ, defNode = "number", &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: def}
		} else {
			parts = append(parts, "A number, or empty for the behaviour described.")
		}
	case List:
		parts = append(parts, listHint)
	case Lines:
		parts = append(parts, linesHint)
	}
	if defNode == nil {
		defNode = str(def)
	}
	if in.Secret {
		parts = append(parts, secretHint)
	}
	desc := strings.Join(parts, " ")
	if len(desc) > gitlabDescriptionLimit {
		return nil, fmt.Errorf("description is %d characters, GitLab allows %d", len(desc), gitlabDescriptionLimit)
	}
	fields := mapping(str("description"), str(desc), str("type"), str(typ))
	if len(in.Options) > 0 {
		opts := sequence()
		for _, o := range in.Options {
			opts.Content = append(opts.Content, str(o))
		}
		fields.Content = append(fields.Content, str("options"), opts)
	}
	if !in.Required {
		fields.Content = append(fields.Content, str("default"), defNode)
	}
	return fields, nil
}

// TemplateVariables renders the generated region of a component job's
// variables: VersionVariable set to the included version (the default
// job-image names it), then one INPUT_<UPPER_SNAKE> variable per input of
// the tool, set from the component input, each line prefixed with indent.
func TemplateVariables(t Tool, indent string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s: \"$[[ component.version ]]\"\n", indent, VersionVariable)
	for _, in := range t.Inputs {
		fmt.Fprintf(&b, "%s%s: \"$[[ inputs.%s ]]\"\n", indent, in.EnvName(), in.Name)
	}
	return b.Bytes()
}

// TemplateStub is the component written for a tool that has none yet: a job
// to finish by hand around the generated regions.
func TemplateStub(t Tool) []byte {
	return []byte(`spec:
  inputs: {}
---
# The job below is hand-written; the spec:inputs header above and the
# variables between the BEGIN/END markers are generated from internal/spec
# (go generate ./...).
"$[[ inputs.job-name ]]":
  stage: $[[ inputs.stage ]]
  image:
    name: $[[ inputs.job-image ]]
    entrypoint: [""]
  variables:
    ` + BeginInputsMarker + `
    ` + EndInputsMarker + `
  script:
    - ` + t.Name + `
  artifacts:
    reports:
      dotenv: ` + t.Name + `.env
`)
}

var inputRefPattern = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)`)

// SpliceTemplate returns a component with its spec:inputs document and its
// generated variables replaced, everything else kept byte for byte. It fails
// when the markers are missing or the job refers to an undeclared input.
func SpliceTemplate(existing []byte, t Tool) ([]byte, error) {
	header, err := TemplateHeader(t)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(existing), "\n")
	sep := -1
	content := false
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if trimmed == "---" && content {
			sep = i
			break
		}
		if trimmed != "" && trimmed != "---" && !strings.HasPrefix(trimmed, "#") {
			content = true
		}
	}
	if sep < 0 {
		return nil, fmt.Errorf("no --- line after the spec: document: a component is the spec:inputs header, ---, then the job")
	}
	job := lines[sep+1:]
	begin, end := -1, -1
	for i, l := range job {
		switch strings.TrimSpace(l) {
		case BeginInputsMarker:
			if begin >= 0 {
				return nil, fmt.Errorf("%q appears twice", BeginInputsMarker)
			}
			begin = i
		case EndInputsMarker:
			if end >= 0 {
				return nil, fmt.Errorf("%q appears twice", EndInputsMarker)
			}
			end = i
		}
	}
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("the job needs the lines %q and %q, in that order, inside its variables", BeginInputsMarker, EndInputsMarker)
	}
	marker := job[begin]
	indent := marker[:len(marker)-len(strings.TrimLeft(marker, " \t"))]

	var out bytes.Buffer
	out.Write(header)
	for _, l := range job[:begin+1] {
		out.WriteString(l)
	}
	out.Write(TemplateVariables(t, indent))
	for _, l := range job[end:] {
		out.WriteString(l)
	}
	declared := map[string]bool{}
	for _, in := range append(slices.Clone(t.Inputs), ComponentInputs(t)...) {
		declared[in.Name] = true
	}
	for _, m := range inputRefPattern.FindAllStringSubmatch(strings.Join(job, ""), -1) {
		if !declared[m[1]] {
			return nil, fmt.Errorf("the job uses $[[ inputs.%s ]], which %s does not declare (its component inputs are %s)", m[1], t.Name, componentInputNames(t))
		}
	}
	return out.Bytes(), nil
}

func componentInputNames(t Tool) string {
	var names []string
	for _, in := range ComponentInputs(t) {
		names = append(names, in.Name)
	}
	return strings.Join(names, ", ")
}
