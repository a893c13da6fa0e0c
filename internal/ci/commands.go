package ci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Group opens a collapsible log section and returns the function that
// closes it: ::group::/::endgroup:: on GitHub, section_start/section_end on
// GitLab (collapsed), ##[group]/##[endgroup] on Azure Pipelines, a header
// line locally. Closing twice is harmless.
func (j *Job) Group(title string) (end func()) {
	title = j.masks.redact(strings.ReplaceAll(strings.ReplaceAll(title, "\r", " "), "\n", " "))
	var once sync.Once
	switch j.Platform {
	case PlatformGitHub:
		j.gh.Group(title)
		return func() { once.Do(j.gh.EndGroup) }
	case PlatformAzure:
		_, _ = io.WriteString(j.logs.raw(), "##[group]"+azureDefuse(title)+"\n")
		return func() { once.Do(func() { _, _ = io.WriteString(j.logs.raw(), "##[endgroup]\n") }) }
	case PlatformGitLab:
		id := j.sectionID(title)
		j.logs.printf("\x1b[0Ksection_start:%d:%s[collapsed=true]\r\x1b[0K%s\n", j.now().Unix(), id, title)
		return func() {
			once.Do(func() { j.logs.printf("\x1b[0Ksection_end:%d:%s\r\x1b[0K\n", j.now().Unix(), id) })
		}
	default:
		j.logs.printf("==> %s\n", title)
		return func() {}
	}
}

// sectionID is a GitLab section name: unique in the job, made of the
// characters GitLab accepts (letters, digits, '_', '.', '-').
func (j *Job) sectionID(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
				b.WriteByte('_')
			}
		}
		if b.Len() >= 40 {
			break
		}
	}
	slug := strings.Trim(b.String(), "_")
	id := fmt.Sprintf("%s_%d", strings.ReplaceAll(j.Tool.Name, "-", "_"), j.sections.next())
	if slug != "" {
		id += "_" + slug
	}
	return id
}

// Annotation is a message attached to a file and line.
type Annotation struct {
	Level   string // notice, warning or error
	File    string
	Line    int
	EndLine int
	Col     int
	Title   string
	Message string
}

func (a Annotation) level() string {
	switch strings.ToLower(a.Level) {
	case "error":
		return "error"
	case "warning", "warn":
		return "warning"
	default:
		return "notice"
	}
}

// Annotate reports a finding: a GitHub ::error/::warning/::notice command
// with file, line and title properties (escaped), an Azure Pipelines
// ##vso[task.logissue] for an error or a warning (the agent has no notice
// level), elsewhere a readable "file:line:col: level: title: message" log
// line.
func (j *Job) Annotate(a Annotation) {
	a.Title = j.masks.redact(a.Title)
	a.Message = j.masks.redact(a.Message)
	if j.Platform == PlatformAzure && a.level() != "notice" {
		j.azureIssue(a.level(), a)
		return
	}
	if j.Platform == PlatformGitHub {
		props := map[string]string{}
		if a.File != "" {
			props["file"] = a.File
		}
		if a.Line > 0 {
			props["line"] = strconv.Itoa(a.Line)
		}
		if a.EndLine > 0 {
			props["endLine"] = strconv.Itoa(a.EndLine)
		}
		if a.Col > 0 {
			props["col"] = strconv.Itoa(a.Col)
		}
		if a.Title != "" {
			props["title"] = a.Title
		}
		gh := j.gh.WithFieldsMap(props)
		switch a.level() {
		case "error":
			gh.Errorf("%s", a.Message)
		case "warning":
			gh.Warningf("%s", a.Message)
		default:
			gh.Noticef("%s", a.Message)
		}
		return
	}
	var loc string
	if a.File != "" {
		loc = a.File
		if a.Line > 0 {
			loc += ":" + strconv.Itoa(a.Line)
			if a.Col > 0 {
				loc += ":" + strconv.Itoa(a.Col)
			}
		}
		loc += ": "
	}
	msg := strings.ReplaceAll(a.Message, "\r\n", "\n")
	if a.Title != "" {
		msg = a.Title + ": " + msg
	}
	j.logs.printf("%s%s: %s\n", loc, a.level(), msg)
}

// summaryLimit is GitHub's limit on a step's summary file.
const summaryLimit = 1 << 20

// AddSummary appends Markdown to the GitHub step summary, keeping the file
// under 1 MiB: what does not fit is cut (at a line when possible) and a note
// says so. On Azure Pipelines it uploads the Markdown as a summary of the
// run (##vso[task.uploadsummary]). Secrets are redacted. Elsewhere it does
// nothing.
func (j *Job) AddSummary(markdown string) error {
	if j.Platform == PlatformAzure {
		return j.azureSummary(j.masks.redact(markdown))
	}
	if j.Platform != PlatformGitHub {
		return nil
	}
	path := j.env.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		j.Log.Debug("GITHUB_STEP_SUMMARY is not set: no step summary")
		return nil
	}
	markdown = j.masks.redact(markdown)
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading the step summary %s: %w", path, err)
	}
	const note = "\n\n> **Note:** the rest of this summary was cut: GitHub keeps at most 1 MiB per step.\n"
	// go-githubactions appends a newline; the file must stay below the limit.
	room := summaryLimit - 1 - size - 1
	if int64(len(markdown)) > room {
		room -= int64(len(note))
		if room <= 0 {
			return fmt.Errorf("the step summary %s is full (%d bytes; GitHub keeps at most 1 MiB per step)", path, size)
		}
		markdown = truncateUTF8(markdown, int(room)) + note
	}
	return fileCommand(func() { j.gh.AddStepSummary(markdown) })
}

// truncateUTF8 cuts s to at most n bytes, at the last newline when there is
// one in the second half, and never inside a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	if i := strings.LastIndexByte(s, '\n'); i > len(s)/2 {
		s = s[:i]
	}
	return s
}

// fileCommand runs a go-githubactions file command, which panics when the
// file cannot be written, and returns that as an error.
func fileCommand(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
