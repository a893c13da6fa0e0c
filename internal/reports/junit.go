package reports

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadJUnit reads a JUnit XML report. It accepts the flavours in use:
// pytest (xunit1 and xunit2), go-junit-report and gotestsum, jest-junit,
// Maven Surefire/Failsafe (including rerunFailure/flakyFailure), Ant;
// <testsuites> or a bare <testsuite> as the root; suites nested in suites;
// several <failure>/<error> elements in one case. name is the file's name,
// used in errors and in Case.Report.
func ReadJUnit(name string, r io.Reader) (Tests, error) {
	dec := newXMLDecoder(r)
	var (
		out       Tests
		suites    []string
		cur       *Case // points at one, or nil outside a <testcase>
		one       Case
		cases     chunks
		collect   *bytes.Buffer // text of the element being read, or nil
		text      bytes.Buffer  // buffers are reused: Reset keeps their memory
		collectIn string        // the element collect belongs to
		output    bytes.Buffer
		intern    = map[string]string{}
		sawRoot   bool
		depth     int
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			out.Cases = cases.all()
			if depth > 0 || !sawRoot {
				if !sawRoot {
					return out, parseErr(name, 0, "not a JUnit XML report: no <testsuites> or <testsuite> element")
				}
				line, _ := dec.InputPos()
				return out, parseErr(name, line, "the XML ends early (truncated file?)")
			}
			return out, nil
		}
		if err != nil {
			out.Cases = cases.all()
			return out, xmlError(name, dec, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			local := t.Name.Local
			if !sawRoot {
				if local != "testsuites" && local != "testsuite" && local != "testrun" {
					line, _ := dec.InputPos()
					return out, parseErr(name, line, "not a JUnit XML report: the root element is <%s>, want <testsuites> or <testsuite>", local)
				}
				sawRoot = true
				// The root's tests= count sizes the case list up front, so
				// that it is neither grown nor copied (bounded: it is only a hint).
				if n, err := strconv.Atoi(attr(t, "tests")); err == nil && n > 0 {
					cases.hint = min(n, 1<<18)
				}
			}
			switch local {
			case "testsuite":
				suites = append(suites, internAttr(intern, t, "name"))
			case "testcase":
				if cur != nil {
					line, _ := dec.InputPos()
					return out, parseErr(name, line, "a <testcase> inside a <testcase>")
				}
				// Suite, class and file names repeat from case to case: one copy each.
				one = Case{Classname: internAttr(intern, t, "classname"), Name: attr(t, "name"), File: internAttr(intern, t, "file"), Report: name, Status: Passed}
				cur = &one
				if len(suites) > 0 {
					cur.Suite = suites[len(suites)-1]
				}
				if cur.Classname == "" {
					cur.Classname = attr(t, "class")
				}
				cur.Line, _ = strconv.Atoi(attr(t, "line"))
				cur.Time = parseSeconds(attr(t, "time"))
				output.Reset()
			case "failure", "error", "rerunFailure", "rerunError":
				if cur == nil || collect != nil {
					break // a suite-level <error> (Ant) or markup inside a message: not a case's failure
				}
				cur.Failures = append(cur.Failures, Failure{
					Error:   local == "error" || local == "rerunError",
					Type:    attr(t, "type"),
					Message: attr(t, "message"),
				})
				text.Reset()
				collect, collectIn = &text, local
			case "skipped", "ignored":
				if cur != nil {
					cur.Status = Skipped
					cur.SkipMessage = attr(t, "message")
				}
			case "system-out", "system-err":
				if cur != nil && collect == nil {
					collect, collectIn = &output, local
				}
			}
		case xml.EndElement:
			depth--
			switch local := t.Name.Local; {
			case collect != nil && local == collectIn:
				if collect == &text {
					f := &cur.Failures[len(cur.Failures)-1]
					f.Text = clip(string(bytes.TrimSpace(text.Bytes())))
				}
				collect = nil
			case local == "testsuite":
				suites = suites[:len(suites)-1]
			case local == "testcase" && cur != nil:
				finishCase(cur, &output)
				cases.add(*cur)
				cur = nil
			}
		case xml.CharData:
			if collect != nil && collect.Len() <= maxText {
				collect.Write(t)
			}
		}
	}
}

// chunks collects cases in fixed-size blocks, so that a report of 100,000
// cases is not copied over and over as a slice grows: one copy at the end.
type chunks struct {
	blocks [][]Case
	n      int
	hint   int // expected number of cases: the first block's size
}

const chunkSize = 4096

func (c *chunks) add(tc Case) {
	if len(c.blocks) == 0 {
		c.blocks = append(c.blocks, make([]Case, 0, max(c.hint, chunkSize)))
	} else if b := c.blocks[len(c.blocks)-1]; len(b) == cap(b) {
		c.blocks = append(c.blocks, make([]Case, 0, chunkSize))
	}
	last := &c.blocks[len(c.blocks)-1]
	*last = append(*last, tc)
	c.n++
}

func (c *chunks) all() []Case {
	if c.n == 0 {
		return nil
	}
	if len(c.blocks) == 1 {
		return c.blocks[0]
	}
	out := make([]Case, 0, c.n)
	for i, b := range c.blocks {
		out = append(out, b...)
		c.blocks[i] = nil // let the block go as soon as it is copied
	}
	return out
}

// finishCase sets a case's status from its failures and keeps the output
// of a failed case only.
func finishCase(c *Case, output *bytes.Buffer) {
	if len(c.Failures) > 0 {
		c.Status = Errored
		for _, f := range c.Failures {
			if !f.Error {
				c.Status = Failed
				break
			}
		}
		c.Output = clip(string(bytes.TrimSpace(output.Bytes())))
	}
}

func newXMLDecoder(r io.Reader) *xml.Decoder {
	dec := xml.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	dec.CharsetReader = charsetReader
	return dec
}

// charsetReader accepts the encodings reports declare besides UTF-8.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.ReplaceAll(label, "_", "-")) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1", "windows-1252", "cp1252":
		return &latin1Reader{r: bufio.NewReader(in)}, nil
	}
	return nil, fmt.Errorf("the encoding %q is not supported: write the report as UTF-8", label)
}

// latin1Reader decodes ISO-8859-1 to UTF-8.
type latin1Reader struct {
	r       *bufio.Reader
	pending []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(l.pending) > 0 {
			c := copy(p[n:], l.pending)
			l.pending = l.pending[c:]
			n += c
			continue
		}
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b < 0x80 {
			p[n] = b
			n++
			continue
		}
		l.pending = []byte(string(rune(b)))
	}
	return n, nil
}

// xmlError turns a decoder error into a ParseError with the line.
func xmlError(name string, dec *xml.Decoder, err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		if strings.Contains(se.Msg, "unexpected EOF") {
			return parseErr(name, se.Line, "the XML ends early (truncated file?)")
		}
		return parseErr(name, se.Line, "malformed XML: %s", se.Msg)
	}
	line, _ := dec.InputPos()
	return &ParseError{File: name, Line: line, Err: fmt.Errorf("reading XML: %w", err)}
}

// internAttr is attr, the value shared with earlier equal values. The
// table is bounded: past 10,000 distinct values it stops growing.
func internAttr(table map[string]string, t xml.StartElement, name string) string {
	v := attr(t, name)
	if s, ok := table[v]; ok {
		return s
	}
	if len(table) < 10000 {
		table[v] = v
	}
	return v
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// parseSeconds reads a time attribute: "1.5", "1,234.5" (Surefire with a
// locale), "" or junk (0).
func parseSeconds(s string) float64 {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f != f {
		return 0
	}
	return f
}
