// Package dockerfile reads a Dockerfile with BuildKit's own parser
// (frontend/dockerfile/{parser,instructions,shell}, never dockerfile2llb)
// and turns it into a build plan: the stages a target needs, each stage's
// base, and the effect of every instruction on the image config, with ARG
// and ENV expanded as Docker does. Instructions that change the filesystem
// (COPY, ADD; RUN later) come out as operations for the builder.
package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// File is a parsed Dockerfile.
type File struct {
	// Name is the path shown in errors (file:line).
	Name     string
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	Escape   rune
}

// Error is a problem at a place in a Dockerfile.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// errorAt wraps err with the first line of loc.
func errorAt(file string, loc []parser.Range, err error) error {
	line := 0
	if len(loc) > 0 {
		line = loc[0].Start.Line
	}
	return &Error{File: file, Line: line, Err: err}
}

// locate turns BuildKit's location errors into file:line errors.
func locate(file string, err error) error {
	var le *parser.LocationError
	line := 0
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	}
	return &Error{File: file, Line: line, Err: errors.New(cleanMessage(err))}
}

// cleanMessage drops BuildKit's "dockerfile parse error on line N:" prefix:
// the line is ours to print.
func cleanMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "dockerfile parse error on line "); i >= 0 {
		if j := strings.Index(msg[i:], ": "); j >= 0 {
			msg = msg[:i] + msg[i+j+2:]
		}
	}
	return msg
}

// Parse parses a Dockerfile. name is used in errors.
func Parse(name string, src []byte) (*File, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, locate(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locate(name, err)
	}
	if len(stages) == 0 {
		return nil, &Error{File: name, Err: errors.New("no FROM instruction: a Dockerfile starts with FROM (after optional ARGs)")}
	}
	return &File{Name: name, Stages: stages, MetaArgs: metaArgs, Escape: res.EscapeToken}, nil
}

// StageIndex finds a stage by name (case-insensitive) or by number.
func (f *File) StageIndex(ref string) (int, bool) {
	if i, ok := instructions.HasStage(f.Stages, ref); ok {
		return i, true
	}
	var n int
	if _, err := fmt.Sscanf(ref, "%d", &n); err == nil && fmt.Sprint(n) == ref && n >= 0 && n < len(f.Stages) {
		return n, true
	}
	return -1, false
}
