package reports

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Severity of a finding, normalized across formats (SARIF's levels).
type Severity string

// Severities, most severe first.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityNote    Severity = "note"
)

// Severities lists the severities, most severe first.
var Severities = []Severity{SeverityError, SeverityWarning, SeverityNote}

// Rank orders severities: 0 is the most severe.
func (s Severity) Rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// ParseSeverity normalizes a severity name from any supported format:
// SARIF (error, warning, note, none), checkstyle (error, warning, info,
// ignore), Code Climate (blocker, critical, major, minor, info).
func ParseSeverity(s string) (Severity, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error", "blocker", "critical", "major", "fatal":
		return SeverityError, true
	case "warning", "warn", "minor":
		return SeverityWarning, true
	case "note", "info", "none", "ignore", "notice":
		return SeverityNote, true
	}
	return SeverityWarning, false
}

// Finding is one lint result.
type Finding struct {
	Tool     string
	Rule     string
	Severity Severity
	Message  string
	File     string
	Line     int
	EndLine  int
	Col      int
	// Fingerprint identifies the finding across runs; the input's own when
	// it has one, else computed by Fingerprints.
	Fingerprint string
	Report      string
}

// Findings is the findings of one or more reports.
type Findings struct {
	Items []Finding
}

// Add appends another report's findings.
func (f *Findings) Add(o Findings) { f.Items = append(f.Items, o.Items...) }

// BySeverity counts findings per severity.
func (f Findings) BySeverity() map[Severity]int {
	m := map[Severity]int{}
	for _, x := range f.Items {
		m[x.Severity]++
	}
	return m
}

// Sort orders findings most severe first, then by file, line and rule.
func (f Findings) Sort() {
	sort.SliceStable(f.Items, func(i, j int) bool {
		a, b := f.Items[i], f.Items[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() < b.Severity.Rank()
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Rule < b.Rule
	})
}

// Fingerprints gives every finding without one a stable fingerprint: a
// hash of tool, rule, file and message (not the line, so that a finding
// keeps its fingerprint when code above it moves) and, for identical
// findings in one file, their ordinal. Fingerprints end up unique: GitLab
// treats findings with equal fingerprints as one.
func (f Findings) Fingerprints() {
	seen := map[string]int{}
	used := map[string]bool{}
	for i := range f.Items {
		x := &f.Items[i]
		if x.Fingerprint != "" && !used[x.Fingerprint] {
			used[x.Fingerprint] = true
			continue
		}
		key := strings.Join([]string{x.Tool, x.Rule, x.File, x.Message}, "\x00")
		n := seen[key]
		seen[key] = n + 1
		sum := sha256.Sum256([]byte(key + "\x00" + strconv.Itoa(n)))
		x.Fingerprint = hex.EncodeToString(sum[:16])
		for used[x.Fingerprint] { // an input's duplicate fingerprint: GitLab would merge them
			sum = sha256.Sum256(append(sum[:], byte(i)))
			x.Fingerprint = hex.EncodeToString(sum[:16])
		}
		used[x.Fingerprint] = true
	}
}

// DetectLint names a lint report's format from its first bytes: "sarif",
// "codequality" (a JSON array) or "checkstyle" (XML).
func DetectLint(head []byte) string {
	head = bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte("[")):
		return "codequality"
	case bytes.HasPrefix(head, []byte("{")):
		return "sarif"
	case bytes.HasPrefix(head, []byte("<")):
		return "checkstyle"
	}
	return ""
}

// ReadLint reads a lint report, its format detected: SARIF 2.1.0,
// checkstyle XML or GitLab code quality JSON.
func ReadLint(name string, r io.Reader) (Findings, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	switch DetectLint(head) {
	case "sarif":
		return ReadSARIF(name, br)
	case "codequality":
		return ReadCodeQuality(name, br)
	case "checkstyle":
		return ReadCheckstyle(name, br)
	}
	return Findings{}, parseErr(name, 1, "unknown lint report format: want SARIF 2.1.0 JSON, checkstyle XML or a GitLab code quality JSON array")
}

type sarifLog struct {
	Version *string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID                   string `json:"id"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		OriginalURIBaseIDs map[string]struct {
			URI string `json:"uri"`
		} `json:"originalUriBaseIds"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex *int   `json:"ruleIndex"`
			Rule      *struct {
				ID    string `json:"id"`
				Index *int   `json:"index"`
			} `json:"rule"`
			Level   string `json:"level"`
			Kind    string `json:"kind"`
			Message struct {
				Text     string `json:"text"`
				Markdown string `json:"markdown"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI       string `json:"uri"`
						URIBaseID string `json:"uriBaseId"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine   int `json:"startLine"`
						StartColumn int `json:"startColumn"`
						EndLine     int `json:"endLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Fingerprints        map[string]string `json:"fingerprints"`
			Suppressions        []struct {
				Status string `json:"status"`
			} `json:"suppressions"`
			BaselineState string `json:"baselineState"`
		} `json:"results"`
	} `json:"runs"`
}

// ReadSARIF reads a SARIF 2.1.0 log. A result's level defaults to its
// rule's default level, then to warning (SARIF §3.27.10); results with
// kind other than "fail", suppressed results and results marked absent
// from the baseline are not findings.
func ReadSARIF(name string, r io.Reader) (Findings, error) {
	li := &lineIndex{r: r}
	dec := json.NewDecoder(li)
	var log sarifLog
	if err := dec.Decode(&log); err != nil {
		return Findings{}, li.jsonError(name, err, "malformed SARIF")
	}
	if log.Version == nil || *log.Version != "2.1.0" {
		v := "none"
		if log.Version != nil {
			v = strconv.Quote(*log.Version)
		}
		return Findings{}, parseErr(name, 1, "not a SARIF 2.1.0 log (version %s)", v)
	}
	var out Findings
	for _, run := range log.Runs {
		tool := run.Tool.Driver.Name
		for _, res := range run.Results {
			if res.Kind != "" && res.Kind != "fail" {
				continue
			}
			if len(res.Suppressions) > 0 || res.BaselineState == "absent" {
				continue
			}
			rule, idx := res.RuleID, res.RuleIndex
			if res.Rule != nil {
				if rule == "" {
					rule = res.Rule.ID
				}
				if idx == nil {
					idx = res.Rule.Index
				}
			}
			level := res.Level
			if level == "" {
				for i, rd := range run.Tool.Driver.Rules {
					if (idx != nil && *idx == i) || (idx == nil && rd.ID == rule && rule != "") {
						if rule == "" {
							rule = rd.ID
						}
						level = rd.DefaultConfiguration.Level
						break
					}
				}
			}
			sev, _ := ParseSeverity(level)
			if level == "" {
				sev = SeverityWarning
			}
			msg := res.Message.Text
			if msg == "" {
				msg = res.Message.Markdown
			}
			f := Finding{Tool: tool, Rule: rule, Severity: sev, Message: msg, Report: name}
			if len(res.Locations) > 0 {
				pl := res.Locations[0].PhysicalLocation
				f.File = sarifPath(pl.ArtifactLocation.URI)
				f.Line, f.Col, f.EndLine = pl.Region.StartLine, pl.Region.StartColumn, pl.Region.EndLine
			}
			f.Fingerprint = firstFingerprint(res.Fingerprints, res.PartialFingerprints)
			out.Items = append(out.Items, f)
		}
	}
	return out, nil
}

// sarifPath turns an artifact URI into a path: file:// URIs lose their
// scheme, percent-escapes are decoded.
func sarifPath(uri string) string {
	if u, err := url.Parse(uri); err == nil && (u.Scheme == "file" || u.Scheme == "") {
		if u.Scheme == "file" {
			return u.Path
		}
		if p, err := url.PathUnescape(uri); err == nil {
			return p
		}
	}
	return uri
}

func firstFingerprint(maps ...map[string]string) string {
	for _, m := range maps {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if m[k] != "" {
				return m[k]
			}
		}
	}
	return ""
}

// codeQualityIssue is GitLab's code quality report entry (a subset of Code
// Climate's issue format).
type codeQualityIssue struct {
	Type        string `json:"type,omitempty"`
	Description string `json:"description"`
	CheckName   string `json:"check_name"`
	Fingerprint string `json:"fingerprint"`
	Severity    string `json:"severity"`
	Location    struct {
		Path  string `json:"path"`
		Lines *struct {
			Begin int `json:"begin"`
			End   int `json:"end,omitempty"`
		} `json:"lines,omitempty"`
		Positions *struct {
			Begin struct {
				Line   int `json:"line"`
				Column int `json:"column,omitempty"`
			} `json:"begin"`
		} `json:"positions,omitempty"`
	} `json:"location"`
	Engine string `json:"engine_name,omitempty"`
}

// ReadCodeQuality reads a GitLab code quality report (a JSON array of Code
// Climate issues), one issue at a time.
func ReadCodeQuality(name string, r io.Reader) (Findings, error) {
	li := &lineIndex{r: r}
	dec := json.NewDecoder(li)
	var out Findings
	tok, err := dec.Token()
	if err != nil {
		return out, li.jsonError(name, err, "malformed code quality report")
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return out, parseErr(name, 1, "not a code quality report: want a JSON array of issues")
	}
	for dec.More() {
		var is codeQualityIssue
		if err := dec.Decode(&is); err != nil {
			return out, li.jsonError(name, err, "malformed code quality issue")
		}
		sev, _ := ParseSeverity(is.Severity)
		f := Finding{Tool: is.Engine, Rule: is.CheckName, Severity: sev, Message: is.Description, File: is.Location.Path, Fingerprint: is.Fingerprint, Report: name}
		if is.Location.Lines != nil {
			f.Line, f.EndLine = is.Location.Lines.Begin, is.Location.Lines.End
		} else if is.Location.Positions != nil {
			f.Line, f.Col = is.Location.Positions.Begin.Line, is.Location.Positions.Begin.Column
		}
		out.Items = append(out.Items, f)
	}
	if _, err := dec.Token(); err != nil {
		return out, li.jsonError(name, err, "malformed code quality report")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return out, parseErr(name, li.line(dec.InputOffset()), "unexpected data after the code quality array")
	}
	return out, nil
}

// ReadCheckstyle reads checkstyle XML (also written by eslint, golangci-lint,
// ktlint, hadolint, phpcs ...).
func ReadCheckstyle(name string, r io.Reader) (Findings, error) {
	dec := newXMLDecoder(r)
	var (
		out   Findings
		file  string
		root  bool
		depth int
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !root {
				return out, parseErr(name, 0, "not a checkstyle report: no <checkstyle> element")
			}
			if depth > 0 {
				line, _ := dec.InputPos()
				return out, parseErr(name, line, "the XML ends early (truncated file?)")
			}
			return out, nil
		}
		if err != nil {
			return out, xmlError(name, dec, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if !root {
				if t.Name.Local != "checkstyle" {
					line, _ := dec.InputPos()
					return out, parseErr(name, line, "not a checkstyle report: the root element is <%s>", t.Name.Local)
				}
				root = true
				continue
			}
			switch t.Name.Local {
			case "file":
				file = attr(t, "name")
			case "error":
				sev, _ := ParseSeverity(attr(t, "severity"))
				if attr(t, "severity") == "" {
					sev = SeverityError
				}
				f := Finding{Tool: "checkstyle", Rule: attr(t, "source"), Severity: sev, Message: attr(t, "message"), File: file, Report: name}
				f.Line, _ = strconv.Atoi(attr(t, "line"))
				f.Col, _ = strconv.Atoi(attr(t, "column"))
				if f.Line < 0 {
					f.Line = 0
				}
				if f.Col < 0 {
					f.Col = 0
				}
				out.Items = append(out.Items, f)
			}
		case xml.EndElement:
			depth--
			if t.Name.Local == "file" {
				file = ""
			}
		}
	}
}

var _ = fmt.Sprint
