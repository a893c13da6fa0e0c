// Package reports reads the reports test runners, coverage tools and linters
// write — JUnit XML in its common flavours, `go test -json` streams,
// Cobertura, Go coverprofiles, LCOV, JaCoCo, SARIF 2.1.0, checkstyle and
// GitLab code quality JSON — into one model, and writes the merged JUnit,
// Cobertura and code quality files GitLab reads.
//
// Every reader streams its input (an encoding/xml token loop, a
// json.Decoder, a line scanner) and keeps only what a verdict or a report
// needs, so a 30 MB JUnit file costs a few megabytes. Malformed input fails
// with an error naming the file and the line.
package reports

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// ParseError is malformed input: the file, the 1-based line (0 when not
// known) and what was wrong.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(file string, line int, format string, args ...any) error {
	return &ParseError{File: file, Line: line, Err: fmt.Errorf(format, args...)}
}

// maxText bounds the failure text and output kept per test case: enough for
// a stack trace, not a megabyte of logs.
const maxText = 16 << 10

// clip cuts s to maxText bytes, noting the cut.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "\n[... cut: " + fmt.Sprint(len(s)-cut) + " more bytes]"
}

// lineIndex records where the newlines of a stream are, so that a byte
// offset from encoding/json can be turned into a line number.
type lineIndex struct {
	r        io.Reader
	offset   int64
	newlines []int64
}

func (l *lineIndex) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.newlines = append(l.newlines, l.offset+int64(i))
		}
	}
	l.offset += int64(n)
	return n, err
}

// line returns the 1-based line of a byte offset.
func (l *lineIndex) line(offset int64) int {
	return sort.Search(len(l.newlines), func(i int) bool { return l.newlines[i] >= offset }) + 1
}

// jsonError turns an encoding/json error into a ParseError with a line.
func (l *lineIndex) jsonError(file string, err error, what string) error {
	var off int64 = -1
	var se *jsonSyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	var te *jsonTypeError
	if errors.As(err, &te) {
		off = te.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &ParseError{File: file, Line: l.line(l.offset), Err: fmt.Errorf("%s: the JSON ends early (truncated file?)", what)}
	}
	if off < 0 {
		return &ParseError{File: file, Err: fmt.Errorf("%s: %v", what, err)}
	}
	return &ParseError{File: file, Line: l.line(off), Err: fmt.Errorf("%s: %v", what, err)}
}
