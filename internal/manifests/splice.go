package manifests

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// source indexes a file's bytes by line for yaml.v3's line:column marks
// (1-based; columns count characters, not bytes).
type source struct {
	b     []byte
	lines []int // byte offset of each line's first byte
	plain plainMemo
}

func newSource(b []byte) *source {
	s := &source{b: b, lines: []int{0}, plain: plainMemo{}}
	for i, c := range b {
		if c == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// offset converts a yaml.v3 mark to a byte offset.
func (s *source) offset(line, col int) (int, error) {
	if line < 1 || line > len(s.lines) {
		return 0, fmt.Errorf("line %d out of range", line)
	}
	off := s.lines[line-1]
	// A byte-order mark at the start of the file is not a column.
	if line == 1 && bytes.HasPrefix(s.b, []byte("\xef\xbb\xbf")) {
		off += 3
	}
	for c := 1; c < col; c++ {
		if off >= len(s.b) || s.b[off] == '\n' {
			return 0, fmt.Errorf("column %d beyond line %d", col, line)
		}
		_, w := utf8.DecodeRune(s.b[off:])
		off += w
	}
	return off, nil
}

// lineEnd is the offset just past line's newline (or the end of the file).
func (s *source) lineEnd(line int) int {
	if line < len(s.lines) {
		return s.lines[line]
	}
	return len(s.b)
}

// span is a byte range and what replaces it.
type span struct {
	start, end int
	text       string
}

// scalarSpan locates the bytes of a single-line scalar's value (quotes
// included), skipping any anchor or tag written before it.
func (s *source) scalarSpan(n *yaml.Node) (int, int, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, 0, fmt.Errorf("not a scalar")
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return 0, 0, fmt.Errorf("the value is a block scalar (| or >); write it as a plain or quoted scalar to have it edited")
	}
	if strings.ContainsAny(n.Value, "\n\r") {
		return 0, 0, fmt.Errorf("the value spans several lines")
	}
	off, err := s.offset(n.Line, n.Column)
	if err != nil {
		return 0, 0, err
	}
	// Skip "&anchor " and "!tag " properties.
	for off < len(s.b) && (s.b[off] == '&' || s.b[off] == '!') {
		for off < len(s.b) && s.b[off] != ' ' && s.b[off] != '\t' && s.b[off] != '\n' {
			off++
		}
		for off < len(s.b) && (s.b[off] == ' ' || s.b[off] == '\t') {
			off++
		}
	}
	end := -1
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if off >= len(s.b) || s.b[off] != '"' {
			break
		}
		for i := off + 1; i < len(s.b) && s.b[i] != '\n'; i++ {
			if s.b[i] == '\\' {
				i++
				continue
			}
			if s.b[i] == '"' {
				end = i + 1
				break
			}
		}
		if end > 0 {
			var v string
			if err := yaml.Unmarshal(s.b[off:end], &v); err != nil || v != n.Value {
				end = -1
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		raw := "'" + strings.ReplaceAll(n.Value, "'", "''") + "'"
		if bytes.HasPrefix(s.b[off:], []byte(raw)) {
			end = off + len(raw)
		}
	default:
		if bytes.HasPrefix(s.b[off:], []byte(n.Value)) {
			end = off + len(n.Value)
		}
	}
	if end < 0 {
		return 0, 0, fmt.Errorf("cannot locate the value %q at line %d column %d", n.Value, n.Line, n.Column)
	}
	return off, end, nil
}

// encodeScalar writes v in the style of the node it replaces. A plain
// scalar whose new value would not read back as that string (1.20 is a
// number, "on" a boolean, ": " starts a mapping) is double-quoted.
func (m plainMemo) encodeScalar(style yaml.Style, v string, inFlow bool) (string, yaml.Style) {
	switch {
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'", yaml.SingleQuotedStyle
	case style&yaml.DoubleQuotedStyle != 0:
		return doubleQuote(v), yaml.DoubleQuotedStyle
	}
	if m.safe(v, inFlow) {
		return v, 0
	}
	return doubleQuote(v), yaml.DoubleQuotedStyle
}

// plainMemo remembers plainSafe's answers for one file: a bundle sets the
// same new reference in thousands of places, and each answer costs a YAML
// parse.
type plainMemo map[plainQuery]bool

type plainQuery struct {
	v      string
	inFlow bool
}

func (m plainMemo) safe(v string, inFlow bool) bool {
	if m == nil {
		return plainSafe(v, inFlow)
	}
	q := plainQuery{v, inFlow}
	ok, seen := m[q]
	if !seen {
		ok = plainSafe(v, inFlow)
		m[q] = ok
	}
	return ok
}

func doubleQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// plainSafe reports whether v, written unquoted, reads back as the string v.
func plainSafe(v string, inFlow bool) bool {
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, "\n\r\t#") {
		return false
	}
	if inFlow && strings.ContainsAny(v, ",[]{}") {
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("k: "+v+"\n"), &n); err != nil {
		return false
	}
	if len(n.Content) != 1 || len(n.Content[0].Content) != 2 {
		return false
	}
	val := n.Content[0].Content[1]
	return val.Kind == yaml.ScalarNode && val.Style == 0 && val.ShortTag() == "!!str" && val.Value == v
}

// apply splices non-overlapping spans into b.
func apply(b []byte, spans []span) ([]byte, error) {
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var out bytes.Buffer
	out.Grow(len(b) + 64)
	pos := 0
	for _, sp := range spans {
		if sp.start < pos || sp.end < sp.start || sp.end > len(b) {
			return nil, fmt.Errorf("internal error: overlapping edits at byte %d", sp.start)
		}
		out.Write(b[pos:sp.start])
		out.WriteString(sp.text)
		pos = sp.end
	}
	out.Write(b[pos:])
	return out.Bytes(), nil
}

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
			text, _ := p.plain.encodeScalar(o.node.Style, o.value, p.inFlow(o.node))
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
	v, _ := p.plain.encodeScalar(0, o.value, false)
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
