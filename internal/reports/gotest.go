package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// testEvent is one line of `go test -json` (cmd/test2json).
type testEvent struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string // a package's fail event when its build failed
}

type goTestState struct {
	c      Case
	output strings.Builder
}

// ReadGoTest reads a `go test -json` stream. Every test and subtest is a
// case (package as suite and classname); a package that fails without a
// failing test (a build failure, a panic in TestMain, a timeout) is a failed
// case named after the package, and the tests still running when it failed
// fail with it. Lines that are not JSON — build output merged from stderr —
// are ignored; a line that starts like JSON but is not is an error.
func ReadGoTest(name string, r io.Reader) (Tests, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		out      Tests
		running  = map[string]*goTestState{}
		order    []string
		pkgOut   = map[string]*strings.Builder{}
		pkgFails = map[string]int{}
		events   int
		lineNo   int
	)
	appendOut := func(b *strings.Builder, s string) {
		if b.Len() <= maxText {
			b.WriteString(s)
		}
	}
	pkgBuf := func(pkg string) *strings.Builder {
		b := pkgOut[pkg]
		if b == nil {
			b = &strings.Builder{}
			pkgOut[pkg] = b
		}
		return b
	}
	finish := func(key string, st *goTestState, status Status, elapsed float64) {
		st.c.Status = status
		st.c.Time = elapsed
		if status == Failed {
			st.c.Failures = []Failure{{Message: "Failed", Text: clip(strings.TrimSpace(st.output.String()))}}
			pkgFails[st.c.Suite]++
		}
		if status == Skipped {
			st.c.SkipMessage = lastLine(st.output.String())
		}
		out.Cases = append(out.Cases, st.c)
		delete(running, key)
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			trimmed := bytes.TrimSpace(line)
			if len(trimmed) > 0 && trimmed[0] == '{' {
				var ev testEvent
				if jerr := json.Unmarshal(trimmed, &ev); jerr != nil {
					return out, parseErr(name, lineNo, "not a go test -json event: %v", jerr)
				}
				events++
				key := ev.Package + "\x00" + ev.Test
				switch {
				case ev.Action == "build-output":
					appendOut(pkgBuf(ev.ImportPath), ev.Output)
				case ev.Test == "" && ev.Action == "output":
					appendOut(pkgBuf(ev.Package), ev.Output)
				case ev.Test == "" && ev.Action == "fail":
					for _, k := range order {
						if st, ok := running[k]; ok && st.c.Suite == ev.Package {
							finish(k, st, Failed, 0)
						}
					}
					if pkgFails[ev.Package] == 0 {
						msg := "the package failed"
						text := pkgBuf(ev.Package).String()
						if ev.FailedBuild != "" {
							msg = "the build failed"
							text = pkgBuf(ev.FailedBuild).String() + text
						}
						out.Cases = append(out.Cases, Case{
							Suite: ev.Package, Classname: ev.Package, Name: ev.Package, Report: name, Status: Failed, Time: ev.Elapsed,
							Failures: []Failure{{Message: msg, Text: clip(strings.TrimSpace(text))}},
						})
					}
				case ev.Test == "":
				case ev.Action == "run":
					if _, ok := running[key]; !ok {
						running[key] = &goTestState{c: Case{Suite: ev.Package, Classname: ev.Package, Name: ev.Test, Report: name}}
						order = append(order, key)
					}
				default:
					st, ok := running[key]
					if !ok {
						// A result without a run event (a filtered or cut stream).
						st = &goTestState{c: Case{Suite: ev.Package, Classname: ev.Package, Name: ev.Test, Report: name}}
						running[key] = st
						order = append(order, key)
					}
					switch ev.Action {
					case "output":
						appendOut(&st.output, ev.Output)
					case "pass":
						finish(key, st, Passed, ev.Elapsed)
					case "fail":
						finish(key, st, Failed, ev.Elapsed)
					case "skip":
						finish(key, st, Skipped, ev.Elapsed)
					}
				}
				if len(order) > 4096 && len(running) < len(order)/2 {
					order = compact(order, running)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, &ParseError{File: name, Line: lineNo, Err: err}
		}
	}
	if events == 0 {
		return out, parseErr(name, 0, "not a go test -json stream: no JSON events (run go test with -json)")
	}
	// Tests still running when the stream ended were cut off (a killed run).
	for _, k := range order {
		if st, ok := running[k]; ok {
			st.output.WriteString("\n(the stream ended before this test finished)")
			finish(k, st, Failed, 0)
		}
	}
	return out, nil
}

func compact(order []string, running map[string]*goTestState) []string {
	kept := order[:0]
	for _, k := range order {
		if _, ok := running[k]; ok {
			kept = append(kept, k)
		}
	}
	return kept
}

// lastLine is the last line of a test's output that is not one of go
// test's own "=== RUN"/"--- SKIP" lines: the t.Skip message.
func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- ") {
			return l
		}
	}
	return ""
}
