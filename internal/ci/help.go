package ci

import (
	"fmt"
	"io"
	"strings"

	"github.com/hoist-ci/hoist/internal/spec"
)

// helpOrVersion prints usage for -h/--help or the version for --version
// (anywhere before "--") and reports whether it did.
func (j *Job) helpOrVersion() (bool, error) {
	for _, arg := range j.env.Args {
		switch arg {
		case "--":
			return false, nil
		case "-h", "-help", "--help":
			_, _ = io.WriteString(j.env.Stdout, Usage(j.Tool))
			return true, ErrHelp
		case "--version":
			_, _ = io.WriteString(j.env.Stdout, spec.BinaryVersion()+"\n")
			return true, ErrHelp
		}
	}
	return false, nil
}

const helpWidth = 80

// Usage is the --help text of a tool, generated from its spec.
func Usage(tool spec.Tool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s\n\n", tool.Name, spec.BinaryVersion(), tool.Title)
	wrap(&b, tool.Description, "", helpWidth)
	fmt.Fprintf(&b, "\nUsage: %s [--input value]...\n\n", tool.Name)
	wrap(&b, "Each input is the same on every surface: a flag here, `with:` on the GitHub action, "+
		"`inputs:` on the GitLab component and `parameters:` on the Azure Pipelines template (which set the variable INPUT_<NAME>). "+
		"Flags win over INPUT_* variables, which win over defaults. "+
		"Lists take commas or newlines; list flags may repeat.", "", helpWidth)
	b.WriteString("\nInputs:\n")
	for _, in := range tool.Inputs {
		b.WriteString("  --" + in.Name + " " + typeHint(in))
		var notes []string
		if in.Default != "" {
			notes = append(notes, "default "+in.Default)
		}
		if in.Required {
			notes = append(notes, "required")
		}
		if in.Secret {
			notes = append(notes, "secret")
		}
		if len(in.Aliases) > 0 {
			notes = append(notes, "alias --"+strings.Join(in.Aliases, ", --"))
		}
		if len(notes) > 0 {
			b.WriteString(" (" + strings.Join(notes, "; ") + ")")
		}
		b.WriteString("\n")
		wrap(&b, in.Description, "      ", helpWidth)
		fmt.Fprintf(&b, "      GitHub: with: %s · GitLab: inputs: %s (%s)\n", in.Name, in.Name, in.EnvName())
	}
	if len(tool.Outputs) > 0 {
		b.WriteString("\nOutputs (GitHub steps.<id>.outputs.<name>; GitLab dotenv variable; Azure Pipelines output variable $(<step>.<name>); local name=value on stdout):\n")
		for _, out := range tool.Outputs {
			fmt.Fprintf(&b, "  %s ($%s)\n", out.Name, tool.DotenvName(out.Name))
			wrap(&b, out.Description, "      ", helpWidth)
		}
	}
	b.WriteString("\nOther flags:\n")
	b.WriteString("  -h, --help    show this help\n")
	b.WriteString("  --version     print the version\n")
	return b.String()
}

func typeHint(in spec.Input) string {
	switch {
	case len(in.Options) > 0:
		return strings.Join(in.Options, "|")
	case in.Type == spec.Boolean:
		return "[true|false]"
	default:
		return string(in.Type)
	}
}

// wrap writes text as lines of at most width columns, each with indent.
func wrap(b *strings.Builder, text, indent string, width int) {
	line := indent
	for _, word := range strings.Fields(text) {
		if line != indent && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	if line != indent {
		b.WriteString(line + "\n")
	}
}
