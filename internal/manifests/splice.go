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
}

func newSource(b []byte) *source {
	s := &source{b: b, lines: []int{0}}
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
func encodeScalar(style yaml.Style, v string, inFlow bool) (string, yaml.Style) {
	switch {
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'", yaml.SingleQuotedStyle
	case style&yaml.DoubleQuotedStyle != 0:
		return doubleQuote(v), yaml.DoubleQuotedStyle
	}
	if plainSafe(v, inFlow) {
		return v, 0
	}
	return doubleQuote(v), yaml.DoubleQuotedStyle
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
