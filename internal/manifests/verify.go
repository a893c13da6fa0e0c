package manifests

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// verify parses out and compares it with the original documents carrying
// exactly the planned edits: same structure, same keys in the same order,
// same values, tags, styles and anchors everywhere else. The edits are
// applied to docs themselves (their spans are already cut; a copy of a
// bundle's nodes would double its cost).
func (p *planner) verify(docs []*yaml.Node, out []byte, line int) error {
	got, err := parseDocsAt(p.file, out, line)
	if err != nil {
		return err
	}
	if len(got) != len(docs) {
		return fmt.Errorf("%d documents instead of %d", len(got), len(docs))
	}
	want := docs
	for _, o := range p.ops {
		c := o.node
		switch o.kind {
		case opSet:
			_, style := p.plain.encodeScalar(o.node.Style, o.value, p.inFlow(o.node))
			c.Value = o.value
			c.Style = style | (o.node.Style & yaml.TaggedStyle)
			if o.node.Style&yaml.TaggedStyle == 0 {
				c.Tag = "!!str"
			}
		case opInsert:
			c.Content = append(c.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: o.key},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: o.value, Style: func() yaml.Style { _, st := p.plain.encodeScalar(0, o.value, false); return st }()})
		case opDelete:
			for i := 0; i+1 < len(c.Content); i += 2 {
				if c.Content[i].Value == o.key {
					c.Content = append(c.Content[:i:i], c.Content[i+2:]...)
					break
				}
			}
		}
	}
	for i := range want {
		if err := same(want[i], got[i], "$"); err != nil {
			return err
		}
	}
	return nil
}

func shortTag(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode {
		return ""
	}
	return n.ShortTag()
}

// same compares two trees, ignoring positions and comments.
func same(a, b *yaml.Node, at string) error {
	if a.Kind != b.Kind {
		return fmt.Errorf("at %s: node kind changed", at)
	}
	if a.Value != b.Value || shortTag(a) != shortTag(b) || a.Anchor != b.Anchor {
		return fmt.Errorf("at %s (line %d): value %q (%s) where %q (%s) was intended", at, b.Line, b.Value, shortTag(b), a.Value, shortTag(a))
	}
	if a.Kind == yaml.ScalarNode && a.Style != b.Style {
		return fmt.Errorf("at %s (line %d): quoting style changed", at, b.Line)
	}
	if len(a.Content) != len(b.Content) {
		return fmt.Errorf("at %s (line %d): %d children instead of %d", at, b.Line, len(b.Content), len(a.Content))
	}
	for i := range a.Content {
		sub := at
		if a.Kind == yaml.MappingNode && i%2 == 1 {
			sub = at + "." + a.Content[i-1].Value
		} else if a.Kind == yaml.SequenceNode {
			sub = fmt.Sprintf("%s[%d]", at, i)
		}
		if err := same(a.Content[i], b.Content[i], sub); err != nil {
			return err
		}
	}
	return nil
}
