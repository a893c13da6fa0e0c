package manifests

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// spans turns the planned ops into byte spans of the file s indexes.
func (p *planner) spans(s *source) ([]span, error) {
	var spans []span
	for _, o := range p.ops {
		switch o.kind {
		case opSet:
			if o.node.Style&yaml.TaggedStyle != 0 && o.node.ShortTag() != "!!str" {
				return nil, fmt.Errorf("%s:%d: the value carries the explicit tag %s; remove it to have the value edited", p.file, o.node.Line, o.node.Tag)
			}
			start, end, err := s.scalarSpan(o.node)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p.file, o.node.Line, err)
			}
			text, _ := encodeScalar(o.node.Style, o.value, p.inFlow(o.node))
			spans = append(spans, span{start, end, text})
		case opInsert:
			sp, err := p.insertSpan(s, o)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: adding %s: %w", p.file, o.node.Line, o.key, err)
			}
			spans = append(spans, sp)
		case opDelete:
			sp, err := p.deleteSpan(s, o)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: removing %s: %w", p.file, o.node.Line, o.key, err)
			}
			spans = append(spans, sp)
		}
	}
	return spans, nil
}

// insertSpan adds `key: value` as a new line after a block mapping's last
// pair, indented like its first key.
func (p *planner) insertSpan(s *source, o *op) (span, error) {
	m := o.node
	if m.Style&yaml.FlowStyle != 0 || len(m.Content) < 2 {
		return span{}, fmt.Errorf("the mapping is written in flow style ({...}); write it in block style to have keys added")
	}
	last := m.Content[len(m.Content)-1]
	if last.Kind != yaml.ScalarNode || last.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || strings.ContainsAny(last.Value, "\n\r") {
		return span{}, fmt.Errorf("the mapping's last value is not a one-line scalar")
	}
	if _, end, err := s.scalarSpan(last); err != nil {
		return span{}, err
	} else if rest := strings.TrimLeft(string(s.b[end:s.lineEnd(last.Line)]), " \t"); rest != "" && rest[0] != '#' && rest[0] != '\n' && rest[0] != '\r' {
		return span{}, fmt.Errorf("the mapping's last line holds more than its value")
	}
	at := s.lineEnd(last.Line)
	text := strings.Repeat(" ", m.Content[0].Column-1) + o.key + ": "
	v, _ := encodeScalar(0, o.value, false)
	text += v
	eol := "\n"
	if at > 0 && at <= len(s.b) && at >= 2 && s.b[at-1] == '\n' && s.b[at-2] == '\r' {
		eol = "\r\n"
	}
	if at == len(s.b) && (len(s.b) == 0 || s.b[len(s.b)-1] != '\n') {
		text = eol + text
	} else {
		text += eol
	}
	return span{at, at, text}, nil
}

// deleteSpan removes the line of a one-line `key: value` pair.
func (p *planner) deleteSpan(s *source, o *op) (span, error) {
	k, v := get(o.node, o.key)
	if k == nil || k.Line != v.Line || v.Kind != yaml.ScalarNode || o.node.Style&yaml.FlowStyle != 0 {
		return span{}, fmt.Errorf("the pair is not on a line of its own")
	}
	start := s.lines[k.Line-1]
	koff, err := s.offset(k.Line, k.Column)
	if err != nil {
		return span{}, err
	}
	if strings.TrimLeft(string(s.b[start:koff]), " ") != "" {
		return span{}, fmt.Errorf("the pair shares its line with a sequence dash; remove it by hand")
	}
	_, end, err := s.scalarSpan(v)
	if err != nil {
		return span{}, err
	}
	if rest := strings.TrimLeft(string(s.b[end:s.lineEnd(k.Line)]), " \t"); rest != "" && rest[0] != '#' && rest[0] != '\n' && rest[0] != '\r' {
		return span{}, fmt.Errorf("the line holds more than the pair")
	}
	return span{start, s.lineEnd(k.Line), ""}, nil
}

// verify parses out and compares it with the original documents carrying
// exactly the planned edits: same structure, same keys in the same order,
// same values, tags, styles and anchors everywhere else.
func (p *planner) verify(docs []*yaml.Node, out []byte, line int) error {
	got, err := parseDocsAt(p.file, out, line)
	if err != nil {
		return err
	}
	if len(got) != len(docs) {
		return fmt.Errorf("%d documents instead of %d", len(got), len(docs))
	}
	copies := map[*yaml.Node]*yaml.Node{}
	want := make([]*yaml.Node, len(docs))
	for i, d := range docs {
		want[i] = deepCopy(d, copies)
	}
	for _, o := range p.ops {
		c := copies[o.node]
		switch o.kind {
		case opSet:
			_, style := encodeScalar(o.node.Style, o.value, p.inFlow(o.node))
			c.Value = o.value
			c.Style = style | (o.node.Style & yaml.TaggedStyle)
			if o.node.Style&yaml.TaggedStyle == 0 {
				c.Tag = "!!str"
			}
		case opInsert:
			c.Content = append(c.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: o.key},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: o.value, Style: func() yaml.Style { _, st := encodeScalar(0, o.value, false); return st }()})
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

func deepCopy(n *yaml.Node, copies map[*yaml.Node]*yaml.Node) *yaml.Node {
	if c, ok := copies[n]; ok {
		return c
	}
	c := *n
	copies[n] = &c
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, ch := range n.Content {
		c.Content[i] = deepCopy(ch, copies)
	}
	c.Alias = nil
	return &c
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
