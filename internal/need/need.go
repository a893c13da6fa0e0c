// Package need lets a tool's error say what the user must provide without
// saying how on a CI platform: components and registry code return a
// need.Error (or an error with a Need method), and internal/ci — which
// knows whether the job runs on GitHub, GitLab, Azure Pipelines or a
// terminal — adds the fix for that platform when it reports the error. A
// GitHub user reads only the GitHub fix.
package need

import "errors"

// Kind is what is missing.
type Kind string

const (
	// Variable: an environment variable the job must define (Subject:
	// its name).
	Variable Kind = "variable"
	// FileVariable: a path to a file the job must provide (Subject: the
	// input or variable that names it).
	FileVariable Kind = "file-variable"
	// History: more git history in the checkout (Subject: what was
	// looked for).
	History Kind = "history"
	// RegistryRead and RegistryPush: credentials that may read, or push
	// to, a registry (Subject: the registry host).
	RegistryRead Kind = "registry-read"
	RegistryPush Kind = "registry-push"
	// TagPipeline: a run on a git tag, or tags given (Subject: the input).
	TagPipeline Kind = "tag-pipeline"
	// RepositoryToken: a token that may push to a git repository
	// (Subject: the input).
	RepositoryToken Kind = "repository-token"
)

// Error is an error that names what is missing.
type Error struct {
	Kind    Kind
	Subject string
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Need reports what is missing.
func (e *Error) Need() (Kind, string) { return e.Kind, e.Subject }

// Wrap marks err as a need of kind for subject.
func Wrap(kind Kind, subject string, err error) error {
	return &Error{Kind: kind, Subject: subject, Err: err}
}

// Needer is an error that names what is missing.
type Needer interface {
	Need() (Kind, string)
}

// Of returns what err (or an error it wraps) says is missing.
func Of(err error) (Kind, string, bool) {
	var n Needer
	if !errors.As(err, &n) {
		return "", "", false
	}
	k, s := n.Need()
	return k, s, true
}
