package spec

import (
	"fmt"
	"regexp"
	"strings"
)

// Table kinds, as they appear in the Markdown markers
// <!-- BEGIN generated <tool> <kind> --> ... <!-- END generated <tool> <kind> -->.
const (
	InputsTable  = "inputs"
	OutputsTable = "outputs"
)

// MarkdownInputs renders the table of a tool's inputs, then the GitLab
// component's own inputs.
func MarkdownInputs(t Tool) string {
	var b strings.Builder
	b.WriteString("Every input has the same name on each surface: GitHub `with:`, GitLab `inputs:`, Azure Pipelines `parameters:`, CLI `--name`.\n\n")
	b.WriteString("| Input | Type | Default | Required | Description | CLI | Environment (GitHub / GitLab) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, in := range t.Inputs {
		required := "no"
		if in.Required {
			required = "yes"
		}
		desc := sentence(in.Description)
		if in.Type == List {
			desc += " " + listHint
		}
		if in.Type == Lines {
			desc += " " + linesHint
		}
		if in.Secret {
			desc += " " + secretHint
		}
		row := []string{
			codeSpan(in.Name),
			markdownType(in),
			markdownDefault(in),
			required,
			desc,
			codeSpan("--" + in.Name),
			envCell(in),
		}
		b.WriteString(tableRow(row))
	}
	b.WriteString("\nGitLab component only: ")
	for i, in := range ComponentInputs(t) {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (default %s) — %s", codeSpan(in.Name), codeSpan(in.Default), strings.TrimSuffix(in.Description, "."))
	}
	b.WriteString(".\n")
	return b.String()
}

// MarkdownOutputs renders the table of a tool's outputs.
func MarkdownOutputs(t Tool) string {
	var b strings.Builder
	b.WriteString("| Output | GitHub | GitLab (dotenv, job `" + t.Name + "`) | Azure Pipelines | Description |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, out := range t.Outputs {
		b.WriteString(tableRow([]string{
			codeSpan(out.Name),
			codeSpan("steps.<id>.outputs." + out.Name),
			codeSpan("$" + t.DotenvName(out.Name)),
			codeSpan("$(" + AzureStepName(t) + "." + out.Name + ")"),
			sentence(out.Description),
		}))
	}
	if _, ok := t.Input(OutputPrefixInput); ok {
		b.WriteString("\nOn GitLab the dotenv names start with the job's name (`output-prefix`): a job `" + t.Name + ":api` writes `$" + UpperSnake(t.Name) + "_API_" + UpperSnake(t.Outputs[0].Name) + "`.\n")
	}
	return b.String()
}

// envCell names the variables that carry an input: GitHub's (hyphens kept)
// and the GitLab component's (UPPER_SNAKE), once when they are the same.
func envCell(in Input) string {
	if in.GitHubEnvName() == in.EnvName() {
		return codeSpan(in.EnvName())
	}
	return codeSpan(in.GitHubEnvName()) + " / " + codeSpan(in.EnvName())
}

func markdownType(in Input) string {
	if len(in.Options) > 0 {
		return codeList(in.Options)
	}
	return string(in.Type)
}

func markdownDefault(in Input) string {
	var parts []string
	if in.Default != "" {
		parts = append(parts, codeSpan(in.Default))
	}
	if in.GitLabDefault != "" && in.GitLabDefault != in.Default {
		parts = append(parts, "GitLab: "+codeSpan(in.GitLabDefault))
	}
	return strings.Join(parts, "<br>")
}

// tableRow renders one Markdown table row, escaping what would break it.
func tableRow(cells []string) string {
	escaped := make([]string, len(cells))
	for i, c := range cells {
		c = strings.ReplaceAll(c, "\r", "")
		c = strings.ReplaceAll(c, "\n", " ")
		escaped[i] = strings.ReplaceAll(c, "|", `\|`)
	}
	return "| " + strings.Join(escaped, " | ") + " |\n"
}

// MarkerBegin and MarkerEnd delimit a generated table in Markdown.
func MarkerBegin(tool, kind string) string {
	return "<!-- BEGIN generated " + tool + " " + kind + " -->"
}

// MarkerEnd closes the region MarkerBegin opens.
func MarkerEnd(tool, kind string) string {
	return "<!-- END generated " + tool + " " + kind + " -->"
}

var markerPattern = regexp.MustCompile(`<!-- (BEGIN|END) generated (\S+) (\S+) -->`)

// SpliceMarkdown replaces the body of every generated region in a Markdown
// document with the table of its tool and kind; the rest is kept byte for
// byte. It fails on a region of an unknown tool or kind, and on unbalanced
// markers.
func SpliceMarkdown(existing []byte, tools []Tool) ([]byte, error) {
	byName := map[string]Tool{}
	for _, t := range tools {
		byName[t.Name] = t
	}
	lines := strings.SplitAfter(string(existing), "\n")
	var out strings.Builder
	open := "" // the BEGIN marker of the region being replaced
	for i, l := range lines {
		m := markerPattern.FindStringSubmatch(l)
		if m == nil {
			if open == "" {
				out.WriteString(l)
			}
			continue
		}
		if strings.TrimSpace(l) != m[0] {
			return nil, fmt.Errorf("line %d: a generated-table marker must be alone on its line", i+1)
		}
		tool, kind := m[2], m[3]
		switch {
		case m[1] == "BEGIN" && open != "":
			return nil, fmt.Errorf("line %d: %s inside the region %s", i+1, m[0], open)
		case m[1] == "BEGIN":
			t, ok := byName[tool]
			if !ok {
				return nil, fmt.Errorf("line %d: %s names no declared tool", i+1, m[0])
			}
			var body string
			switch kind {
			case InputsTable:
				body = MarkdownInputs(t)
			case OutputsTable:
				body = MarkdownOutputs(t)
			default:
				return nil, fmt.Errorf("line %d: %s: the kind is %q or %q", i+1, m[0], InputsTable, OutputsTable)
			}
			out.WriteString(l)
			if !strings.HasSuffix(l, "\n") {
				out.WriteString("\n")
			}
			out.WriteString(body)
			open = m[0]
		case open == "":
			return nil, fmt.Errorf("line %d: %s without its BEGIN marker", i+1, m[0])
		case m[0] != strings.Replace(open, "BEGIN", "END", 1):
			return nil, fmt.Errorf("line %d: %s does not close %q", i+1, m[0], open)
		default:
			out.WriteString(l)
			open = ""
		}
	}
	if open != "" {
		return nil, fmt.Errorf("%s is never closed", open)
	}
	return []byte(out.String()), nil
}

// DocStub is the docs page written for a tool that has none yet.
func DocStub(t Tool) []byte {
	return []byte("# " + t.Name + "\n\n" + sentence(t.Description) + "\n\n## Inputs\n\n" +
		MarkerBegin(t.Name, InputsTable) + "\n" + MarkerEnd(t.Name, InputsTable) + "\n\n## Outputs\n\n" +
		MarkerBegin(t.Name, OutputsTable) + "\n" + MarkerEnd(t.Name, OutputsTable) + "\n")
}
