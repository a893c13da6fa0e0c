package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hoist-ci/hoist/internal/golden"
	"github.com/stretchr/testify/require"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// TestGeneratedFilesUpToDate fails when a file generated from the
// declarations differs from what is committed.
func TestGeneratedFilesUpToDate(t *testing.T) {
	repo := os.DirFS(repoRoot)
	files, err := Render(repo)
	require.NoError(t, err)
	stale, err := Stale(repo, files)
	require.NoError(t, err)
	if len(stale) > 0 {
		t.Fatalf("generated files are stale, run go generate ./...:\n  %s", strings.Join(stale, "\n  "))
	}
}

func TestToolsValidate(t *testing.T) {
	require.NotEmpty(t, Tools())
	for _, tool := range Tools() {
		t.Run(tool.Name, func(t *testing.T) {
			require.NoError(t, tool.Validate())
		})
	}
}

// fakeTool exercises every kind of input the generators handle.
func fakeTool() Tool {
	return Tool{
		Name:        "fake-tool",
		Title:       "A tool for the generator's golden tests",
		Description: "Does nothing | twice.",
		Stage:       "test",
		Icon:        "check-square",
		Color:       "green",
		Inputs: []Input{
			{Name: "target", Type: String, Required: true, Description: "Where to act"},
			{Name: "tags", Type: List, Description: "Tags to write."},
			{Name: "mode", Type: String, Default: "fast", Options: []string{"fast", "slow", "true"}, Description: "How: `fast` | `slow`."},
			{Name: "dry-run", Type: Boolean, Default: "false", Description: "Write nothing."},
			{Name: "flag", Type: Boolean, Description: "Unset means: decide from the event."},
			{Name: "retries", Type: Number, Default: "3", Description: "Attempts per request."},
			{Name: "ratio", Type: Number, GitLabDefault: "0.5", AzureDefault: "0.25", Description: "A fraction."},
			{Name: "width", Type: Number, Description: "Unset means 7."},
			{Name: "token", Type: String, Secret: true, GitLabDefault: "$CI_JOB_TOKEN", Description: "API token with `a|b` scope."},
			{Name: "repo", Type: String, Default: "ghcr.io/x/y", GitLabDefault: "$CI_REGISTRY_IMAGE", Description: "Repository."},
		},
		Outputs: []Output{
			{Name: "digest", Description: "Digest written."},
			{Name: "pipe-out", Description: "Has a | pipe"},
		},
	}
}

// TestRenderGolden renders the fake tool into testdata/fake-tool/input and
// compares every file with testdata/fake-tool/expected (-update rewrites).
func TestRenderGolden(t *testing.T) {
	dir := filepath.Join("testdata", "fake-tool")
	files, err := render(os.DirFS(filepath.Join(dir, "input")), []Tool{fakeTool()})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"actions/fake-tool/action.yml", "actions/fake-tool/host/action.yml", "templates/fake-tool.yml", "templates/azure/fake-tool.yml", "docs/fake-tool.md", "README.md",
	}, keys(files))

	rendered := t.TempDir()
	for name, content := range files {
		dst := filepath.Join(rendered, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, content, 0o644))
	}
	golden.Dir(t, filepath.Join(dir, "expected"), rendered)

	// Rendering the output again changes nothing.
	repo := fstest.MapFS{}
	for name, content := range files {
		repo[name] = &fstest.MapFile{Data: content}
	}
	again, err := render(repo, []Tool{fakeTool()})
	require.NoError(t, err)
	require.Equal(t, files, again)
}

func TestRootActionIsBuildPush(t *testing.T) {
	bp := fakeTool()
	bp.Name = RootActionTool
	tests := []struct {
		name  string
		tools []Tool
		root  bool
	}{
		{name: "no build-push, no root action", tools: []Tool{fakeTool()}},
		{name: "build-push is the root action", tools: []Tool{fakeTool(), bp}, root: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := render(fstest.MapFS{}, tt.tools)
			require.NoError(t, err)
			root, ok := files["action.yml"]
			require.Equal(t, tt.root, ok)
			if tt.root {
				require.Equal(t, files["actions/build-push/action.yml"], root)
			}
		})
	}
}

func TestSpliceTemplateErrors(t *testing.T) {
	job := "spec:\n  inputs: {}\n---\njob:\n  variables:\n    # BEGIN generated inputs\n    # END generated inputs\n  script: [x]\n"
	tests := []struct {
		name, template, want string
	}{
		{name: "no separator", template: "spec:\n  inputs: {}\n", want: "no --- line"},
		{name: "no markers", template: "spec: {}\n---\njob:\n  script: [x]\n", want: "# BEGIN generated inputs"},
		{name: "markers reversed", template: "spec: {}\n---\n# END generated inputs\n# BEGIN generated inputs\n", want: "in that order"},
		{name: "marker twice", template: job + "# BEGIN generated inputs\n", want: "appears twice"},
		{name: "undeclared input", template: strings.Replace(job, "[x]", "[\"$[[ inputs.image ]]\"]", 1), want: "inputs.image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SpliceTemplate([]byte(tt.template), fakeTool())
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestSpliceMarkdownErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{name: "unknown tool", doc: "<!-- BEGIN generated nope inputs -->\n<!-- END generated nope inputs -->\n", want: "names no declared tool"},
		{name: "unknown kind", doc: "<!-- BEGIN generated fake-tool flags -->\n<!-- END generated fake-tool flags -->\n", want: "the kind is"},
		{name: "never closed", doc: "<!-- BEGIN generated fake-tool inputs -->\n", want: "never closed"},
		{name: "end without begin", doc: "<!-- END generated fake-tool inputs -->\n", want: "without its BEGIN"},
		{name: "mismatched end", doc: "<!-- BEGIN generated fake-tool inputs -->\n<!-- END generated fake-tool outputs -->\n", want: "does not close"},
		{name: "nested", doc: "<!-- BEGIN generated fake-tool inputs -->\n<!-- BEGIN generated fake-tool outputs -->\n", want: "inside the region"},
		{name: "not alone", doc: "see <!-- BEGIN generated fake-tool inputs -->\n", want: "alone on its line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SpliceMarkdown([]byte(tt.doc), []Tool{fakeTool()})
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestTableRowEscapes(t *testing.T) {
	require.Equal(t, "| a \\| b | c d |\n", tableRow([]string{"a | b", "c\r\nd"}))
}

func TestCodeSpan(t *testing.T) {
	tests := map[string]string{
		"plain":   "`plain`",
		"a`b":     "``a`b``",
		"`start":  "`` `start ``",
		"a``b`c":  "```a``b`c```",
		"$CI_JOB": "`$CI_JOB`",
	}
	for in, want := range tests {
		require.Equal(t, want, codeSpan(in), in)
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
