package spec

import "cmp"

// stamped is the version written into a binary at link time:
//
//	go build -ldflags "-X github.com/hoist-ci/hoist/internal/spec.stamped=0.2.0"
//
// (make image VERSION=0.2.0). A plain `go build` leaves it empty.
//
// The release branch declares stamped and BinaryVersion in version.go (an
// unstamped binary reports <Version>-dev there): when both branches meet,
// keep that one and delete this file.
var stamped string

// BinaryVersion is the running binary's version: the stamped one, else
// Version.
func BinaryVersion() string { return cmp.Or(stamped, Version) }
