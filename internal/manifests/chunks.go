package manifests

import (
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// chunk is a run of a file's documents: bytes [start, end), first line.
type chunk struct {
	start, end int
	line       int
}

// splitDocuments cuts a YAML stream before each "---" document marker at
// the start of a line. YAML forbids such a line inside any scalar (block,
// flow or quoted), so every chunk holds whole documents. A stream with
// directives (%YAML, %TAG: they belong to the document after them) is
// left whole.
func splitDocuments(b []byte) []chunk {
	var cuts []int
	line, lines := 1, []int{}
	for i := 0; i < len(b); {
		if i == 0 || b[i-1] == '\n' {
			if b[i] == '%' {
				return []chunk{{0, len(b), 1}}
			}
			if i > 0 && len(b)-i >= 3 && b[i] == '-' && b[i+1] == '-' && b[i+2] == '-' &&
				(len(b)-i == 3 || b[i+3] == ' ' || b[i+3] == '\t' || b[i+3] == '\n' || b[i+3] == '\r') {
				cuts = append(cuts, i)
				lines = append(lines, line)
			}
		}
		if b[i] == '\n' {
			line++
		}
		i++
	}
	chunks := make([]chunk, 0, len(cuts)+1)
	start, startLine := 0, 1
	for k, c := range cuts {
		chunks = append(chunks, chunk{start, c, startLine})
		start, startLine = c, lines[k]
	}
	return append(chunks, chunk{start, len(b), startLine})
}

// shiftLines adds delta to the line of every node under n.
func shiftLines(n *yaml.Node, delta int) {
	n.Line += delta
	for _, c := range n.Content {
		shiftLines(c, delta)
	}
}

var errLine = regexp.MustCompile(`\bline (\d+)\b`)

// shiftErrorLines renumbers the "line N" of a parser's message by delta.
func shiftErrorLines(err error, delta int) error {
	if delta == 0 {
		return err
	}
	msg := errLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(m[len("line "):])
		return "line " + strconv.Itoa(n+delta)
	})
	return &shiftedError{msg: msg, err: err}
}

type shiftedError struct {
	msg string
	err error
}

func (e *shiftedError) Error() string { return e.msg }
func (e *shiftedError) Unwrap() error { return e.err }
