package spec

import "cmp"

// version is the version stamped into a binary at link time:
//
//	go build -ldflags "-X github.com/hoist-ci/hoist/internal/spec.version=0.2.0"
//
// (the Makefile's VERSION). A plain `go build` leaves it empty.
var version string

// BinaryVersion is the running binary's version: the stamped one, else
// Version.
func BinaryVersion() string { return cmp.Or(version, Version) }
