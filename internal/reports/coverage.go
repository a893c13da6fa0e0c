package reports

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Coverage formats.
const (
	FormatCobertura = "cobertura"
	FormatGo        = "go"
	FormatLCOV      = "lcov"
	FormatJaCoCo    = "jacoco"
)

// LineHits is how often one line ran.
type LineHits struct {
	Line int
	Hits int64
}

// FileCoverage is one source file's line coverage, lines ascending.
type FileCoverage struct {
	Path  string
	Lines []LineHits
}

// Coverage is line coverage by file, and for Go profiles statement
// coverage too (what `go test -cover` and `go tool cover -func` print).
type Coverage struct {
	Formats []string
	Files   []FileCoverage
	// Statements and CoveredStatements are set when every input was a Go
	// profile; Percent then uses them, as Go's tools do.
	Statements, CoveredStatements int64
	statementsOnly                bool
	// Sources are Cobertura's <source> directories: relative file names are
	// relative to one of them (coverage.py writes the measured directory).
	Sources []string
}

// LineCounts returns the lines with coverage data and those that ran.
func (c Coverage) LineCounts() (valid, covered int64) {
	for _, f := range c.Files {
		for _, l := range f.Lines {
			valid++
			if l.Hits > 0 {
				covered++
			}
		}
	}
	return valid, covered
}

// Percent is the coverage in percent: statements for Go profiles, lines
// otherwise. ok is false when there is nothing to measure.
func (c Coverage) Percent() (pct float64, ok bool) {
	if c.statementsOnly && c.Statements > 0 {
		return 100 * float64(c.CoveredStatements) / float64(c.Statements), true
	}
	valid, covered := c.LineCounts()
	if valid == 0 {
		return 0, false
	}
	return 100 * float64(covered) / float64(valid), true
}

// Add merges another coverage into c: a file in both has its hits summed
// line by line.
func (c *Coverage) Add(o Coverage) {
	if len(c.Formats) == 0 {
		c.statementsOnly = o.statementsOnly
	} else {
		c.statementsOnly = c.statementsOnly && o.statementsOnly
	}
	c.Formats = append(c.Formats, o.Formats...)
	c.Sources = append(c.Sources, o.Sources...)
	c.Statements += o.Statements
	c.CoveredStatements += o.CoveredStatements
	idx := map[string]int{}
	for i, f := range c.Files {
		idx[f.Path] = i
	}
	for _, f := range o.Files {
		i, ok := idx[f.Path]
		if !ok {
			idx[f.Path] = len(c.Files)
			c.Files = append(c.Files, f)
			continue
		}
		m := map[int]int64{}
		for _, l := range c.Files[i].Lines {
			m[l.Line] += l.Hits
		}
		for _, l := range f.Lines {
			m[l.Line] += l.Hits
		}
		c.Files[i].Lines = sortedLines(m)
	}
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
}

func sortedLines(m map[int]int64) []LineHits {
	out := make([]LineHits, 0, len(m))
	for l, h := range m {
		out = append(out, LineHits{Line: l, Hits: h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// fileLines collects line hits by file in first-seen order.
type fileLines struct {
	order []string
	files map[string]map[int]int64
}

func (f *fileLines) add(path string, line int, hits int64, max bool) {
	if f.files == nil {
		f.files = map[string]map[int]int64{}
	}
	m, ok := f.files[path]
	if !ok {
		m = map[int]int64{}
		f.files[path] = m
		f.order = append(f.order, path)
	}
	if max {
		if old, ok := m[line]; !ok || hits > old {
			m[line] = hits
		}
		return
	}
	m[line] += hits
}

func (f *fileLines) coverage(format string) Coverage {
	c := Coverage{Formats: []string{format}}
	for _, p := range f.order {
		c.Files = append(c.Files, FileCoverage{Path: p, Lines: sortedLines(f.files[p])})
	}
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
	return c
}

// DetectCoverage names the format of a coverage report from its first
// bytes: Go coverprofile ("mode: "), LCOV (TN:/SF: records), or XML
// (Cobertura or JaCoCo, told apart by the root element when read).
func DetectCoverage(head []byte) string {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte("mode:")):
		return FormatGo
	case bytes.HasPrefix(head, []byte("<")):
		return "xml"
	}
	for _, p := range []string{"TN:", "SF:", "VER:"} {
		if bytes.HasPrefix(head, []byte(p)) {
			return FormatLCOV
		}
	}
	return ""
}

// ReadCoverage reads a coverage report in any supported format, detected
// from its content: Cobertura XML, Go coverprofile, LCOV or JaCoCo XML.
func ReadCoverage(name string, r io.Reader) (Coverage, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	switch DetectCoverage(head) {
	case FormatGo:
		return ReadGoCoverProfile(name, br)
	case FormatLCOV:
		return ReadLCOV(name, br)
	case "xml":
		return readCoverageXML(name, br)
	}
	return Coverage{}, parseErr(name, 1, "unknown coverage format: want a Cobertura or JaCoCo XML report, a Go coverprofile (mode: ...) or an LCOV tracefile (SF:...)")
}

// ReadGoCoverProfile reads `go test -coverprofile` output (several
// profiles concatenated are fine). A block listed twice — packages
// instrumented by several test binaries with -coverpkg — counts once with
// its highest count, as `go tool cover` does.
func ReadGoCoverProfile(name string, r io.Reader) (Coverage, error) {
	var g GoProfiles
	if err := g.Read(name, r); err != nil {
		return Coverage{}, err
	}
	return g.Coverage(), nil
}

type goBlock struct {
	file           int32
	sl, sc, el, ec int32
}

type goCounts struct {
	stmts int32
	count int64
}

// GoProfiles merges Go coverprofiles block by block, so that the same
// package measured in several profile files (-coverpkg across test runs)
// counts once. The zero value is ready to use.
type GoProfiles struct {
	files   []string
	fileIdx map[string]int32
	blocks  map[goBlock]goCounts
	order   []goBlock
}

// Read adds one profile.
func (g *GoProfiles) Read(name string, r io.Reader) error {
	if g.blocks == nil {
		g.fileIdx, g.blocks = map[string]int32{}, map[goBlock]goCounts{}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		lineNo  int
		sawMode bool
	)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			lineNo++
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.TrimSpace(line) == "":
			case strings.HasPrefix(line, "mode:"):
				switch mode := strings.TrimSpace(line[5:]); mode {
				case "set", "count", "atomic":
				default:
					return parseErr(name, lineNo, "unknown coverprofile mode %q (want set, count or atomic)", mode)
				}
				sawMode = true
			default:
				if !sawMode {
					return parseErr(name, lineNo, "not a Go coverprofile: the first line must be \"mode: set|count|atomic\"")
				}
				b, c, perr := parseProfileLine(line)
				if perr != nil {
					return parseErr(name, lineNo, "malformed coverprofile line %q: %v (want file.go:line.col,line.col statements count)", truncate(line, 120), perr)
				}
				fi, ok := g.fileIdx[b.file]
				if !ok {
					fi = int32(len(g.files))
					g.fileIdx[b.file] = fi
					g.files = append(g.files, b.file)
				}
				k := goBlock{fi, b.sl, b.sc, b.el, b.ec}
				old, seen := g.blocks[k]
				if !seen {
					g.order = append(g.order, k)
					g.blocks[k] = goCounts{stmts: b.stmts, count: c}
				} else if c > old.count {
					old.count = c
					g.blocks[k] = old
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &ParseError{File: name, Line: lineNo, Err: err}
		}
	}
	if !sawMode {
		return parseErr(name, 1, "not a Go coverprofile: no \"mode:\" line")
	}
	return nil
}

// Coverage returns the merged profiles' coverage and releases the blocks.
func (g *GoProfiles) Coverage() Coverage {
	// Lines per file: every line of every block, then sorted and merged
	// (a line in several blocks keeps its highest count). Slices, not maps:
	// a 50 MB profile has millions of lines.
	cov := Coverage{Formats: []string{FormatGo}, statementsOnly: true}
	perFile := make([][]LineHits, len(g.files))
	for _, k := range g.order {
		v := g.blocks[k]
		cov.Statements += int64(v.stmts)
		if v.count > 0 {
			cov.CoveredStatements += int64(v.stmts)
		}
		for l := k.sl; l <= k.el && l-k.sl < 100000; l++ {
			perFile[k.file] = append(perFile[k.file], LineHits{Line: int(l), Hits: v.count})
		}
	}
	g.blocks, g.order = nil, nil
	for i, lines := range perFile {
		sort.Slice(lines, func(a, b int) bool {
			if lines[a].Line != lines[b].Line {
				return lines[a].Line < lines[b].Line
			}
			return lines[a].Hits > lines[b].Hits
		})
		merged := lines[:0]
		for _, l := range lines {
			if len(merged) > 0 && merged[len(merged)-1].Line == l.Line {
				continue // sorted by hits, highest first
			}
			merged = append(merged, l)
		}
		cov.Files = append(cov.Files, FileCoverage{Path: g.files[i], Lines: slices.Clip(merged)})
		perFile[i] = nil
	}
	g.files, g.fileIdx = nil, nil
	sort.Slice(cov.Files, func(i, j int) bool { return cov.Files[i].Path < cov.Files[j].Path })
	return cov
}

type profileBlock struct {
	file           string
	sl, sc, el, ec int32
	stmts          int32
}

// parseProfileLine parses "path/f.go:12.34,15.2 3 1".
func parseProfileLine(line string) (profileBlock, int64, error) {
	var b profileBlock
	colon := strings.LastIndexByte(line, ':')
	if colon <= 0 {
		return b, 0, errors.New("no file name")
	}
	b.file = line[:colon]
	fields := strings.Fields(line[colon+1:])
	if len(fields) != 3 {
		return b, 0, errors.New("want a range and two numbers after the file")
	}
	start, end, ok := strings.Cut(fields[0], ",")
	if !ok {
		return b, 0, errors.New("the range has no comma")
	}
	var err error
	if b.sl, b.sc, err = lineCol(start); err != nil {
		return b, 0, err
	}
	if b.el, b.ec, err = lineCol(end); err != nil {
		return b, 0, err
	}
	if b.el < b.sl {
		return b, 0, errors.New("the range ends before it starts")
	}
	n, err := strconv.ParseInt(fields[1], 10, 32)
	if err != nil || n < 0 {
		return b, 0, errors.New("the statement count is not a number")
	}
	b.stmts = int32(n)
	count, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil || count < 0 {
		return b, 0, errors.New("the hit count is not a number")
	}
	return b, count, nil
}

func lineCol(s string) (int32, int32, error) {
	l, c, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, errors.New("a position is not line.column")
	}
	ln, err1 := strconv.ParseInt(l, 10, 32)
	cn, err2 := strconv.ParseInt(c, 10, 32)
	if err1 != nil || err2 != nil || ln < 1 || cn < 0 {
		return 0, 0, errors.New("a position is not line.column")
	}
	return int32(ln), int32(cn), nil
}

// ReadLCOV reads an LCOV tracefile (geninfo, c8/nyc, coverage.py's lcov,
// cargo-llvm-cov): SF: starts a file, DA:line,hits records a line.
func ReadLCOV(name string, r io.Reader) (Coverage, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		fl     fileLines
		file   string
		lineNo int
		saw    bool
	)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			lineNo++
			line = strings.TrimSpace(line)
			key, val, _ := strings.Cut(line, ":")
			switch key {
			case "SF":
				file, saw = val, true
			case "end_of_record":
				file = ""
			case "DA":
				if file == "" {
					return Coverage{}, parseErr(name, lineNo, "a DA: record outside a file (no SF: before it)")
				}
				parts := strings.Split(val, ",")
				if len(parts) < 2 {
					return Coverage{}, parseErr(name, lineNo, "malformed DA record %q (want DA:line,hits)", truncate(line, 120))
				}
				ln, err1 := strconv.Atoi(parts[0])
				hits, err2 := strconv.ParseFloat(parts[1], 64) // some writers print 1e+06
				if err1 != nil || err2 != nil || ln < 0 || hits < 0 || hits != hits {
					return Coverage{}, parseErr(name, lineNo, "malformed DA record %q (want DA:line,hits)", truncate(line, 120))
				}
				if hits > 1e18 {
					hits = 1e18
				}
				fl.add(file, ln, int64(hits), false)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Coverage{}, &ParseError{File: name, Line: lineNo, Err: err}
		}
	}
	if !saw {
		return Coverage{}, parseErr(name, 1, "not an LCOV tracefile: no SF: record")
	}
	return fl.coverage(FormatLCOV), nil
}

// readCoverageXML reads Cobertura (<coverage>) or JaCoCo (<report>).
func readCoverageXML(name string, r io.Reader) (Coverage, error) {
	dec := newXMLDecoder(r)
	var (
		fl       fileLines
		format   string
		depth    int
		inMethod int
		file     string // Cobertura class filename / JaCoCo package dir + sourcefile
		pkg      string
		sources  []string
		source   *strings.Builder // the <source> being read
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if format == "" {
				return Coverage{}, parseErr(name, 0, "not a coverage report: no root element")
			}
			if depth > 0 {
				line, _ := dec.InputPos()
				return Coverage{}, parseErr(name, line, "the XML ends early (truncated file?)")
			}
			cov := fl.coverage(format)
			cov.Sources = sources
			return cov, nil
		}
		if err != nil {
			return Coverage{}, xmlError(name, dec, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if format == "" {
				switch t.Name.Local {
				case "coverage":
					format = FormatCobertura
				case "report":
					format = FormatJaCoCo
				default:
					line, _ := dec.InputPos()
					return Coverage{}, parseErr(name, line, "unknown XML coverage report: the root element is <%s>, want <coverage> (Cobertura) or <report> (JaCoCo)", t.Name.Local)
				}
				continue
			}
			switch format + "/" + t.Name.Local {
			case "cobertura/source":
				source = &strings.Builder{}
			case "cobertura/class":
				file = attr(t, "filename")
			case "cobertura/method":
				inMethod++
			case "cobertura/line":
				if inMethod > 0 || file == "" {
					break
				}
				ln, err1 := strconv.Atoi(attr(t, "number"))
				hits, err2 := strconv.ParseFloat(attr(t, "hits"), 64)
				if err1 != nil || err2 != nil || hits < 0 || hits != hits {
					line, _ := dec.InputPos()
					return Coverage{}, parseErr(name, line, "a <line> without a numeric number and hits")
				}
				fl.add(file, ln, int64(min(hits, 1e18)), false)
			case "jacoco/package":
				pkg = attr(t, "name")
			case "jacoco/sourcefile":
				file = attr(t, "name")
				if pkg != "" {
					file = pkg + "/" + file
				}
			case "jacoco/line":
				if file == "" {
					break
				}
				ln, err1 := strconv.Atoi(attr(t, "nr"))
				ci, err2 := strconv.ParseInt(defaultStr(attr(t, "ci"), "0"), 10, 64)
				if err1 != nil || err2 != nil || ci < 0 {
					line, _ := dec.InputPos()
					return Coverage{}, parseErr(name, line, "a <line> without numeric nr and ci")
				}
				fl.add(file, ln, ci, false)
			}
		case xml.EndElement:
			depth--
			switch format + "/" + t.Name.Local {
			case "cobertura/source":
				if source != nil {
					if s := strings.TrimSpace(source.String()); s != "" {
						sources = append(sources, s)
					}
					source = nil
				}
			case "cobertura/method":
				inMethod--
			case "cobertura/class", "jacoco/sourcefile":
				file = ""
			case "jacoco/package":
				pkg = ""
			}
		case xml.CharData:
			if source != nil && source.Len() < 4096 {
				source.Write(t)
			}
		}
	}
}

func defaultStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
