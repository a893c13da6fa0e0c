package spec

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/hoist-ci/hoist/internal/testrig/azureagent"
)

var (
	azureSchemaOnce sync.Once
	azureSchema     *jsonschema.Schema
	azureSchemaErr  error
)

// azurePipelinesSchema compiles the Azure Pipelines YAML schema kept in
// testdata (see testdata/azure-pipelines/SOURCE.md).
func azurePipelinesSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	azureSchemaOnce.Do(func() {
		f, err := os.Open(filepath.Join("testdata", "azure-pipelines", "service-schema.json.gz"))
		if err != nil {
			azureSchemaErr = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			azureSchemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(zr)
		if err != nil {
			azureSchemaErr = err
			return
		}
		const url = "https://github.com/Microsoft/azure-pipelines-vscode/blob/main/service-schema.json"
		c := jsonschema.NewCompiler()
		if azureSchemaErr = c.AddResource(url, doc); azureSchemaErr != nil {
			return
		}
		azureSchema, azureSchemaErr = c.Compile(url)
	})
	require.NoError(t, azureSchemaErr, "compiling the Azure Pipelines schema")
	return azureSchema
}

// azureJSON is a YAML value as the Azure Pipelines parser and the schema see
// it: every scalar a string (the parser types values by where they are, and
// the schema's booleans and numbers are string patterns).
func azureJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = azureJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = azureJSON(e)
		}
		return out
	case nil:
		return nil
	case bool:
		return strings.ToLower(azureagent.Stringify(x))
	}
	return azureagent.Stringify(v)
}

func validateAzure(t *testing.T, name string, v any) {
	t.Helper()
	j, err := json.Marshal(azureJSON(v))
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	require.NoError(t, err)
	if err := azurePipelinesSchema(t).Validate(doc); err != nil {
		t.Errorf("%s does not match the Azure Pipelines schema:\n%v\n%s", name, err, j)
	}
}

// expandAzure expands a step template with args, its required parameters
// given placeholder values.
func expandAzure(t *testing.T, tool Tool, src []byte, args map[string]any) map[string]any {
	t.Helper()
	all := map[string]any{}
	for _, in := range tool.Inputs {
		if in.Required {
			all[in.Name] = "placeholder"
		}
	}
	for k, v := range args {
		all[k] = v
	}
	out, err := azureagent.ExpandTemplate(src, all)
	require.NoError(t, err, "expanding %s", AzureTemplatePath(tool))
	return out
}

// TestAzureTemplatesMatchSchema validates every step template against the
// Azure Pipelines schema: its parameters as written, its steps as Azure
// expands them — the binary on the agent and hoist's image with docker run
// — and checks that both branches hand every input to the tool.
func TestAzureTemplatesMatchSchema(t *testing.T) {
	fake, err := render(os.DirFS(filepath.Join("testdata", "fake-tool", "input")), []Tool{fakeTool()})
	require.NoError(t, err)
	for _, tool := range append(Tools(), fakeTool()) {
		t.Run(tool.Name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(repoRoot, AzureTemplatePath(tool)))
			if tool.Name == fakeTool().Name {
				src, err = fake[AzureTemplatePath(tool)], nil
			}
			require.NoError(t, err)
			var raw map[string]any
			require.NoError(t, yaml.Unmarshal(src, &raw))
			for _, args := range []map[string]any{
				{},
				{"hoist-image": Image(), "name": "custom_step", "env": map[string]any{"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "$(awsSecret)"}},
			} {
				expanded := expandAzure(t, tool, src, args)
				validateAzure(t, AzureTemplatePath(tool), map[string]any{"parameters": raw["parameters"], "steps": expanded["steps"]})

				steps, _ := expanded["steps"].([]any)
				require.Len(t, steps, 1)
				step := steps[0].(map[string]any)
				env := azureJSON(step["env"]).(map[string]any)
				for _, in := range tool.Inputs {
					require.Contains(t, env, in.EnvName())
				}
				if args["hoist-image"] != nil {
					require.Contains(t, step["script"], "docker run")
					require.Contains(t, step["script"], Image())
					require.Equal(t, "custom_step", step["name"])
					require.Equal(t, "$(awsSecret)", env["AWS_SECRET_ACCESS_KEY"])
				} else {
					require.Equal(t, tool.Name, step["script"])
					require.Equal(t, AzureStepName(tool), step["name"])
				}
			}
		})
	}
}

// TestAzureTemplatesNameParametersLikeInputs: the parameters are the tool's
// inputs, same names and order, then the template's own; defaults render
// as the tool reads them.
func TestAzureTemplatesNameParametersLikeInputs(t *testing.T) {
	for _, tool := range Tools() {
		src, err := os.ReadFile(filepath.Join(repoRoot, AzureTemplatePath(tool)))
		require.NoError(t, err)
		var raw map[string]any
		require.NoError(t, yaml.Unmarshal(src, &raw))
		decls, err := azureagent.Parameters(raw["parameters"])
		require.NoError(t, err)
		var got, want []string
		for _, d := range decls {
			got = append(got, d.Name)
		}
		for _, in := range append(append([]Input(nil), tool.Inputs...), AzureTemplateParameters(tool)...) {
			want = append(want, in.Name)
		}
		require.Equal(t, want, got, tool.Name)
	}
	expanded := expandAzure(t, BuildPush(), mustRead(t, filepath.Join(repoRoot, AzureTemplatePath(BuildPush()))), map[string]any{"cache": true, "tags": "r/app:1\nr/app:2"})
	env := azureJSON(expanded["steps"].([]any)[0].(map[string]any)["env"]).(map[string]any)
	require.Equal(t, "true", env["INPUT_CACHE"])
	require.Equal(t, "false", env["INPUT_NO_PUSH"])
	raw := expanded["steps"].([]any)[0].(map[string]any)["env"].(map[string]any)
	require.Equal(t, "True", azureagent.Stringify(raw["INPUT_CACHE"]), "Azure renders a boolean as True/False in an environment variable")
	require.Equal(t, ".", env["INPUT_CONTEXT"])
	require.Equal(t, "r/app:1\nr/app:2", env["INPUT_TAGS"])
	require.Equal(t, "", env["INPUT_SHORT_SHA_LENGTH"], "no GitLab default on Azure")

	gate := expandAzure(t, Gate(), mustRead(t, filepath.Join(repoRoot, AzureTemplatePath(Gate()))), nil)
	genv := azureJSON(gate["steps"].([]any)[0].(map[string]any)["env"]).(map[string]any)
	require.Equal(t, "gate-reports/junit.xml", genv["INPUT_JUNIT_REPORT"], "reports published on Azure by default")
	require.Equal(t, "gate-reports/coverage.xml", genv["INPUT_COVERAGE_REPORT"])
	require.Equal(t, "", genv["INPUT_CODEQUALITY_REPORT"])

	_, err := azureagent.ExpandTemplate(mustRead(t, filepath.Join(repoRoot, AzureTemplatePath(Retag()))), map[string]any{"latest": "sometimes"})
	require.ErrorContains(t, err, "allowed values")
	_, err = azureagent.ExpandTemplate(mustRead(t, filepath.Join(repoRoot, AzureTemplatePath(Retag()))), map[string]any{"dry-run": "yes"})
	require.ErrorContains(t, err, "not a boolean")
	_, err = azureagent.ExpandTemplate(mustRead(t, filepath.Join(repoRoot, AzureTemplatePath(Retag()))), map[string]any{"dry_run": true})
	require.ErrorContains(t, err, "unexpected parameter 'dry_run'")
}

// TestAzureExamplesMatchSchema validates the example pipelines.
func TestAzureExamplesMatchSchema(t *testing.T) {
	files := repoFiles(t, "examples/azure", "*.yml", "*.yaml")
	require.NotEmpty(t, files)
	for _, f := range files {
		var doc any
		require.NoError(t, yaml.Unmarshal(mustRead(t, f), &doc))
		validateAzure(t, f, doc)
	}
}

// TestAzureSchemaCatchesMistakes makes sure the validation is not vacuous.
func TestAzureSchemaCatchesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown step key":       "steps:\n- script: x\n  nmae: y\n",
		"parameter of no type":   "parameters:\n- name: x\n  type: text\nsteps: []\n",
		"misspelt top-level key": "paramters: []\nsteps: []\n",
		"step name with a dot":   "steps:\n- script: x\n  name: a.b\n",
		"stages and steps":       "stages: []\nsteps: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			var v any
			require.NoError(t, yaml.Unmarshal([]byte(doc), &v))
			j, err := json.Marshal(azureJSON(v))
			require.NoError(t, err)
			d, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
			require.NoError(t, err)
			require.Error(t, azurePipelinesSchema(t).Validate(d), strings.TrimSpace(doc))
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
