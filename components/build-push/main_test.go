package buildpush

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/hoist-ci/hoist/internal/sandbox"
	"github.com/hoist-ci/hoist/internal/testrig"
)

// TestMain lets the test binary serve as the sandbox's init step (RUN
// under namespaces re-executes the running binary), as the build-push
// main does.
//
// Run as uid 65534 by testrig.AsNobody (TestRootless), it first enters a
// user namespace as build-push's main does.
func TestMain(m *testing.M) {
	testrig.NobodyStep()
	if handled, err := sandbox.Init(); handled {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	if mode := os.Getenv("HOIST_TEST_ROOTLESS"); mode != "" || sandbox.Reexecuted() {
		if code, done := sandbox.Rootless(sandbox.RootlessOptions{NoSubordinateIDs: os.Getenv("HOIST_TEST_ROOTLESS") == "single"}); done {
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

// linesTo is Options.Output for tests: each line of a RUN's output into w
// after its prefix, as the platform layer writes it.
func linesTo(w io.Writer) func(string) io.WriteCloser {
	var mu sync.Mutex
	return func(prefix string) io.WriteCloser {
		return &prefixed{w: w, mu: &mu, prefix: prefix}
	}
}

type prefixed struct {
	mu      *sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.partial[:i])
		p.partial = p.partial[i+1:]
	}
}

func (p *prefixed) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.partial)
	}
	return nil
}
