package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// schemasDir holds the GitHub and GitLab schemas, beside the repository
// (CI clones the repository next to shared/).
var schemasDir = filepath.Join(repoRoot, "..", "shared", "schemas")

// schemas compiles the three schemas offline (their $refs are all local).
func schemas(t *testing.T) (action, workflow, gitlab *jsonschema.Schema) {
	t.Helper()
	if _, err := os.Stat(schemasDir); err != nil {
		t.Fatalf("the schemas are missing: %v; clone the shared/ directory beside the repository so that ../shared/schemas/{github-action,github-workflow,gitlab-ci}.json exist", err)
	}
	compile := func(name string) *jsonschema.Schema {
		p, err := filepath.Abs(filepath.Join(schemasDir, name))
		require.NoError(t, err)
		f, err := os.Open(p)
		require.NoError(t, err)
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		require.NoError(t, err, "reading %s", p)
		c := jsonschema.NewCompiler()
		require.NoError(t, c.AddResource(p, doc))
		sch, err := c.Compile(p)
		require.NoError(t, err, "compiling %s", p)
		return sch
	}
	return compile("github-action.json"), compile("github-workflow.json"), compile("gitlab-ci.json")
}

// yamlDocuments decodes every document of a YAML stream into JSON values.
// Custom tags (GitLab's !reference) are read as their plain YAML kind.
func yamlDocuments(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing YAML: %w", err)
		}
		dropCustomTags(&n)
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding YAML: %w", err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("converting YAML to JSON: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			return nil, fmt.Errorf("reading the JSON of a YAML document: %w", err)
		}
		docs = append(docs, doc)
	}
}

func dropCustomTags(n *yaml.Node) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		n.Tag = ""
	}
	for _, c := range n.Content {
		dropCustomTags(c)
	}
}

func validateYAML(t *testing.T, sch *jsonschema.Schema, name string, data []byte) {
	t.Helper()
	docs, err := yamlDocuments(data)
	require.NoError(t, err, name)
	require.NotEmpty(t, docs, "%s has no YAML document", name)
	for i, doc := range docs {
		if err := sch.Validate(doc); err != nil {
			t.Errorf("%s, document %d, does not match %s:\n%v", name, i+1, sch.Location, err)
		}
	}
}

// repoFiles lists the files under dir (relative to the repository) that
// match, by base name, one of the patterns; a missing dir lists none.
func repoFiles(t *testing.T, dir string, patterns ...string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(repoRoot, dir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, pat := range patterns {
			if ok, _ := filepath.Match(pat, d.Name()); ok {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	return out
}

func TestFilesMatchSchemas(t *testing.T) {
	action, workflow, gitlab := schemas(t)
	tests := []struct {
		name     string
		schema   *jsonschema.Schema
		files    []string
		nonEmpty bool
		// interpolate: GitLab validates a component after its inputs are
		// interpolated (an array input fills `parallel: matrix:`).
		interpolate bool
	}{
		{name: "GitHub actions", schema: action, nonEmpty: true, files: append(
			repoFiles(t, "actions", "action.yml", "action.yaml"),
			repoFiles(t, ".", "action.yml")...)},
		{name: "GitLab components", schema: gitlab, nonEmpty: true, interpolate: true, files: gitlabTemplates(repoFiles(t, "templates", "*.yml"))},
		{name: "GitLab examples", schema: gitlab, files: repoFiles(t, "examples", ".gitlab-ci.yml", "*.gitlab-ci.yml")},
		{name: "GitHub workflows", schema: workflow, files: append(
			repoFiles(t, "examples/github", "*.yml", "*.yaml"),
			repoFiles(t, ".github/workflows", "*.yml", "*.yaml")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.nonEmpty {
				require.NotEmpty(t, tt.files)
			}
			for _, f := range dedupe(tt.files) {
				data, err := os.ReadFile(f)
				require.NoError(t, err)
				if tt.interpolate {
					data = interpolateDefaults(t, f, data)
				}
				validateYAML(t, tt.schema, f, data)
			}
		})
	}
}

// TestRenderedFakeToolMatchesSchemas checks the generators on every kind of
// input, beyond what the real tools declare today.
func TestRenderedFakeToolMatchesSchemas(t *testing.T) {
	action, _, gitlab := schemas(t)
	files, err := render(os.DirFS(filepath.Join("testdata", "fake-tool", "input")), []Tool{fakeTool()})
	require.NoError(t, err)
	validateYAML(t, action, "actions/fake-tool/action.yml", files["actions/fake-tool/action.yml"])
	validateYAML(t, gitlab, "templates/fake-tool.yml", files["templates/fake-tool.yml"])
}

// TestSchemasCatchMistakes makes sure the validation is not vacuous.
func TestSchemasCatchMistakes(t *testing.T) {
	action, _, gitlab := schemas(t)
	tests := []struct {
		name   string
		schema *jsonschema.Schema
		doc    string
	}{
		{name: "action without runs", schema: action, doc: "name: x\ndescription: y\n"},
		{name: "action with a bad icon", schema: action, doc: "name: x\ndescription: y\nbranding: {icon: nope}\nruns: {using: docker, image: x}\n"},
		{name: "boolean input with a string default", schema: gitlab, doc: "spec:\n  inputs:\n    x: {type: boolean, default: 'yes'}\n"},
		{name: "number input with an empty default", schema: gitlab, doc: "spec:\n  inputs:\n    x: {type: number, default: ''}\n"},
		{name: "unknown spec key", schema: gitlab, doc: "spec:\n  input: {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := yamlDocuments([]byte(tt.doc))
			require.NoError(t, err)
			require.Error(t, tt.schema.Validate(docs[0]))
		})
	}
}

func dedupe(files []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		c := filepath.Clean(f)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// gitlabTemplates drops the Azure Pipelines step templates (templates/azure/)
// from the templates: they match the Azure schema (azure_test.go).
func gitlabTemplates(files []string) []string {
	var out []string
	for _, f := range files {
		if !strings.Contains(filepath.ToSlash(f), "templates/azure/") {
			out = append(out, f)
		}
	}
	return out
}

var inputRef = regexp.MustCompile(`\$\[\[ inputs\.([A-Za-z0-9_-]+) \]\]`)

// interpolateDefaults does what GitLab does to a component included with
// no inputs: every `$[[ inputs.NAME ]]` takes NAME's default; one that is
// a whole value takes it with its type (an array stays an array), one
// inside a string takes its text (an array as JSON).
func interpolateDefaults(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var header, body yaml.Node
	require.NoError(t, dec.Decode(&header), name)
	if err := dec.Decode(&body); errors.Is(err, io.EOF) {
		return data
	} else {
		require.NoError(t, err, name)
	}
	defaults := map[string]*yaml.Node{}
	if inputs := lookupPath(header.Content[0], "spec", "inputs"); inputs != nil {
		for i := 0; i+1 < len(inputs.Content); i += 2 {
			if d := lookupPath(inputs.Content[i+1], "default"); d != nil {
				defaults[inputs.Content[i].Value] = d
			}
		}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				walk(c)
				continue
			}
			if m := inputRef.FindStringSubmatch(c.Value); m != nil && m[0] == c.Value {
				d, ok := defaults[m[1]]
				require.True(t, ok, "%s: input %s has no default", name, m[1])
				n.Content[i] = d
				continue
			}
			c.Value = inputRef.ReplaceAllStringFunc(c.Value, func(ref string) string {
				d, ok := defaults[inputRef.FindStringSubmatch(ref)[1]]
				require.True(t, ok, "%s: %s has no default", name, ref)
				if d.Kind == yaml.ScalarNode {
					return d.Value
				}
				var v any
				require.NoError(t, d.Decode(&v))
				j, err := json.Marshal(v)
				require.NoError(t, err)
				return string(j)
			})
		}
	}
	walk(&body)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	require.NoError(t, enc.Encode(&header), name)
	require.NoError(t, enc.Encode(&body), name)
	return out.Bytes()
}

func lookupPath(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}
