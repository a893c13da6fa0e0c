package bump

import (
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"strings"

	"github.com/hoist-ci/hoist/internal/manifests"
)

// Markdown summarizes the result for a job summary.
func (r Result) Markdown() string {
	var b strings.Builder
	switch {
	case !r.Changed:
		b.WriteString("### bump: nothing to change\n\nEvery reference already points at the requested image.\n")
		return b.String()
	case r.DryRun:
		b.WriteString("### bump (dry run): would change\n\n")
	default:
		fmt.Fprintf(&b, "### bump: committed `%.12s`\n\n", r.Commit)
	}
	b.WriteString("| file | line | field | old | new |\n|---|---|---|---|---|\n")
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "| %s | %d | %s | `%s` | `%s` |\n", c.File, c.Line, c.Field, c.Old, c.New)
	}
	return b.String()
}

// MessageData is what a message template sees.
type MessageData struct {
	// Image, Tag, Digest and Version (the tag, else the digest) are the
	// first images entry's.
	Image, Tag, Digest, Version string
	// Old and New are the first edited value before and after.
	Old, New     string
	SourceCommit string
	Updates      []manifests.Update
	Changes      []manifests.Change
	Files        []string
}

// DefaultMessage is used when no message is given.
const DefaultMessage = `chore(deploy): bump {{.Image}} to {{.Version}}`

// slug makes a branch-name component of an image or version.
func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > 60 {
		out = out[:60]
	}
	return out
}

// prBody is the pull request's description: the changes and the diff.
func prBody(r Result, source string) string {
	var b strings.Builder
	b.WriteString("Image bump by hoist.\n\n| file | line | field | old | new |\n|---|---|---|---|---|\n")
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "| %s | %d | %s | `%s` | `%s` |\n", c.File, c.Line, c.Field, c.Old, c.New)
	}
	diff := r.Diff
	if len(diff) > 50000 {
		diff = diff[:50000] + "\n... (truncated)\n"
	}
	fmt.Fprintf(&b, "\n<details><summary>diff</summary>\n\n```diff\n%s```\n</details>\n", diff)
	if source != "" {
		fmt.Fprintf(&b, "\nSource commit: %s\n", source)
	}
	return b.String()
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func describe(edits []manifests.FileEdit, withDiff bool) Result {
	var r Result
	var diffs []string // joined once: a large bundle's diff is not copied as it grows
	for _, e := range edits {
		r.Files = append(r.Files, e.Path)
		r.Changes = append(r.Changes, e.Changes...)
		if withDiff {
			diffs = append(diffs, manifests.UnifiedDiff(e.Path, e.Old, e.New))
		}
	}
	sort.Strings(r.Files)
	r.Changed = len(edits) > 0
	r.Diff = strings.Join(diffs, "")
	return r
}

func message(tmpl *template.Template, isDefault bool, ups []manifests.Update, r Result, source string) (string, error) {
	d := MessageData{SourceCommit: source, Updates: ups, Changes: r.Changes, Files: r.Files}
	if len(ups) > 0 {
		d.Image, d.Tag, d.Digest, d.Version = ups[0].Label(), ups[0].Tag, ups[0].Digest, ups[0].Version()
	}
	if len(r.Changes) > 0 {
		d.Old, d.New = r.Changes[0].Old, r.Changes[0].New
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, d); err != nil {
		return "", fmt.Errorf("message template: %w", err)
	}
	msg := strings.TrimSpace(b.String())
	if len(ups) > 1 && isDefault {
		var others []string
		for _, u := range ups[1:] {
			others = append(others, u.Label()+" to "+u.Version())
		}
		msg += ", " + strings.Join(others, ", ")
	}
	var body strings.Builder
	for _, c := range r.Changes {
		fmt.Fprintf(&body, "- %s:%d %s: %s -> %s\n", c.File, c.Line, c.Field, orEmpty(c.Old), orEmpty(c.New))
	}
	if body.Len() > 0 {
		msg += "\n\n" + body.String()
	}
	if source != "" {
		msg += "\nSource-Commit: " + source + "\n"
	}
	return msg, nil
}

func orEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
