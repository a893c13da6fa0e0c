// Package multicall is hoist's one binary: it runs the tool named by the
// name it was called by (a link /usr/local/bin/build-push → hoist, or
// /kaniko/executor) or by its first argument (`hoist build-push --flag …`).
package multicall

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hoist-ci/hoist/internal/ci"
	"github.com/hoist-ci/hoist/internal/command/buildpush"
	"github.com/hoist-ci/hoist/internal/command/bump"
	"github.com/hoist-ci/hoist/internal/command/gate"
	"github.com/hoist-ci/hoist/internal/command/publish"
	"github.com/hoist-ci/hoist/internal/command/retag"
	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/spec"
)

// Name is the binary's own name.
const Name = "hoist"

// Executor is kaniko's executor, run as build-push with kaniko's flags.
const Executor = "executor"

// mains are the tools' mains by name; each reads os.Args.
func mains() map[string]func() int {
	return map[string]func() int{
		"build-push": buildpush.Main,
		"retag":      retag.Main,
		"bump":       bump.Main,
		"gate":       gate.Main,
		"publish":    publish.Main,
		Executor:     buildpush.ExecutorMain,
	}
}

// Tools are the tools' names, in the order the docs list them: one link
// each in the image (and the executor's, /kaniko/executor).
func Tools() []string {
	var names []string
	for _, t := range spec.Tools() {
		names = append(names, t.Name)
	}
	return names
}

// Main runs the tool argv names and returns the exit code. It may set
// os.Args to the tool's command line (the tools read it, and the sandbox
// re-executes the binary with it).
func Main(argv []string, stdout, stderr io.Writer) int {
	// RUN re-executes the binary as the sandbox's init step.
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(stderr, err)
		return 125
	}
	table := mains()
	if len(argv) == 0 {
		argv = []string{Name}
	}
	if run, ok := table[filepath.Base(argv[0])]; ok {
		return run()
	}
	args := argv[1:]
	if len(args) == 0 {
		usage(stderr)
		return ci.ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return ci.ExitOK
	case "--version", "version":
		fmt.Fprintln(stdout, Name+" "+spec.BinaryVersion())
		return ci.ExitOK
	}
	run, ok := table[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q: the tools are %s (`%s <tool> --help`)\n", Name, args[0], strings.Join(append(Tools(), Executor), ", "), Name)
		return ci.ExitUsage
	}
	// The tool sees its own name as the program's: the sandbox
	// re-executes the binary under it.
	os.Args = args
	return run()
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "%s %s: CI components for container delivery\n\nusage: %s <tool> [--flag value …], or call it through a link named for the tool\n\ntools:\n", Name, spec.BinaryVersion(), Name)
	for _, t := range spec.Tools() {
		fmt.Fprintf(w, "  %-11s %s\n", t.Name, t.Title)
	}
	fmt.Fprintf(w, "  %-11s build-push with kaniko's executor flags (/kaniko/executor)\n", Executor)
}
