// Package azureagent emulates the part of the Azure Pipelines agent that
// hoist's tools talk to, for tests: it reads a step's output the way the
// agent does (logging commands found anywhere in a line, their escapes,
// secrets masked from then on, issues, output variables, summaries,
// published test results and coverage), expands hoist's step templates
// with typed parameters, maps variables into a step's environment and runs
// multi-stage pipelines whose later stages read earlier stages' outputs.
//
// The grammar follows the agent's source (microsoft/azure-pipelines-agent,
// commit 42bde98bea7b): src/Microsoft.VisualStudio.Services.Agent/Command.cs
// (TryParse), src/Agent.Sdk/CommandStringConvertor.cs (Unescape),
// src/Agent.Worker/TaskCommandExtension.cs (setvariable, setsecret,
// logissue, uploadsummary), src/Agent.Worker/WorkerCommandManager.cs and
// VarUtil.ConvertToEnvVariableFormat. It is an emulation for tests, not a
// port: only what hoist uses is modelled.
package azureagent

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const commandPrefix = "##vso["

// ignored tells the characters a culture-aware comparison skips.
func ignored(r rune) bool {
	return r != '\t' && (unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r))
}

// indexIgnoring finds pat in s, ignorable characters of s skipped, and
// returns where the match starts and ends in s (-1, -1 when absent).
func indexIgnoring(s, pat string) (int, int) {
	for start := 0; start < len(s); {
		r, size := utf8.DecodeRuneInString(s[start:])
		if ignored(r) || r != rune(pat[0]) {
			start += size
			continue
		}
		k, i := 0, start
		for i < len(s) && k < len(pat) {
			r, n := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == rune(pat[k]):
				k++
			case !ignored(r):
				k = -1
			}
			if k < 0 {
				break
			}
			i += n
		}
		if k == len(pat) {
			return start, i
		}
		start += size
	}
	return -1, -1
}

// dropIgnorable removes what a culture-aware comparison skips: format
// characters (zero-width space and joiners, word joiner, byte order mark,
// soft hyphen, bidirectional marks) and control characters other than the
// tab.
func dropIgnorable(s string) string {
	return strings.Map(func(r rune) rune {
		if ignored(r) {
			return -1
		}
		return r
	}, s)
}

// Command is one logging command: ##vso[area.event k=v;k=v]data.
type Command struct {
	Area, Event string
	// Properties by lower-cased name (the agent's dictionary ignores case).
	Properties map[string]string
	Data       string
}

// Name is area.event.
func (c Command) Name() string { return c.Area + "." + c.Event }

// Unescape is the agent's CommandStringConvertor.Unescape with percent
// decoding on (DECODE_PERCENTS defaults to true): %3B, %0D, %0A, %5D first,
// then %AZP25.
func Unescape(s string) string {
	for _, m := range [][2]string{{";", "%3B"}, {"\r", "%0D"}, {"\n", "%0A"}, {"]", "%5D"}} {
		s = strings.ReplaceAll(s, m[1], m[0])
	}
	return strings.ReplaceAll(s, "%AZP25", "%")
}

// ParseCommand reads a logging command from a line as the agent's
// Command.TryParse does: the prefix anywhere in the line, the command info
// up to the first "]" after it, area and event split on "." (exactly two
// non-empty parts), properties split on ";" (empty entries dropped) and
// each on its first "=" (a property without a value is dropped), and the
// rest of the line as the data.
//
// The agent's search is .NET's culture-aware string.IndexOf, which skips
// ignorable characters (a zero-width space between the "#"s still matches):
// they are dropped here before the search, so that a line a tool meant to
// make inert is judged as strictly as the agent would.
func ParseCommand(line string) (Command, bool) {
	i, j := indexIgnoring(line, commandPrefix)
	if i < 0 {
		return Command{}, false
	}
	rb := strings.IndexByte(line[j:], ']')
	if rb < 0 {
		return Command{}, false
	}
	rb += j
	info := line[j:rb]
	name, props, hasProps := strings.Cut(info, " ")
	var parts []string
	for _, p := range strings.Split(name, ".") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) != 2 {
		return Command{}, false
	}
	c := Command{Area: parts[0], Event: parts[1], Properties: map[string]string{}}
	if hasProps {
		for _, p := range strings.Split(props, ";") {
			if p == "" {
				continue
			}
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" || v == "" {
				continue
			}
			c.Properties[strings.ToLower(k)] = Unescape(v)
		}
	}
	c.Data = Unescape(line[rb+1:])
	return c, true
}

// IsFormatting tells whether a line is a formatting command the log viewer
// renders (##[group], ##[endgroup], ##[section], ##[warning], ...): the
// line starts with "##[".
func IsFormatting(line string) (string, string, bool) {
	rest, ok := strings.CutPrefix(dropIgnorable(line), "##[")
	if !ok {
		return "", "", false
	}
	kind, text, ok := strings.Cut(rest, "]")
	if !ok {
		return "", "", false
	}
	return kind, text, true
}
