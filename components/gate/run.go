package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// runName is a command's optional "name: " prefix.
var runName = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*):\s+(\S.*)$`)

// splitRun returns a run's name and command. An unnamed command is named
// after itself (cut to 60 bytes).
func splitRun(s string, i int) (name, command string) {
	if m := runName.FindStringSubmatch(s); m != nil {
		return m[1], m[2]
	}
	name = s
	if len(name) > 60 {
		name = name[:57] + "..."
	}
	if name == "" {
		name = fmt.Sprintf("run %d", i+1)
	}
	return name, s
}

// maxKeptOutput bounds the output kept per command for the score regex:
// the end of it, where linters print their score.
const maxKeptOutput = 4 << 20

// runCommands runs each command with sh -c in the workspace, its output
// streamed line by line into a log group. After a failure the remaining
// commands run only with ContinueOnFailure.
func runCommands(ctx context.Context, o Options) []RunResult {
	var out []RunResult
	failed := false
	for i, s := range o.Run {
		name, command := splitRun(s, i)
		rr := RunResult{Name: name, Command: command}
		if (failed && !o.ContinueOnFailure) || ctx.Err() != nil {
			rr.NotRun = true
			out = append(out, rr)
			continue
		}
		rr.ExitCode, rr.Duration, rr.output = runOne(ctx, o, name, command)
		if rr.ExitCode != 0 {
			failed = true
		}
		out = append(out, rr)
	}
	return out
}

func runOne(ctx context.Context, o Options, name, command string) (int, time.Duration, []byte) {
	end := func() {}
	if o.Console != nil {
		title := "run " + name + ": " + command
		if name == command {
			title = "run: " + command
		}
		end = o.Console.Group(title)
	}
	defer end()
	var log io.WriteCloser = nopWriteCloser{io.Discard}
	if o.Console != nil {
		log = o.Console.Output("")
	}
	kept := &tail{max: maxKeptOutput}
	w := &lockedWriter{w: io.MultiWriter(log, kept)}
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = o.Workspace
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	_ = log.Close()
	print := func(s string) {
		if o.Console != nil {
			o.Console.Print(s)
		}
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			code = ee.ExitCode()
		case errors.As(err, &ee):
			code = 128 + signalNumber(ee)
			print(fmt.Sprintf("gate: %s was killed: %v", name, err))
		default:
			code = 127
			print(fmt.Sprintf("gate: could not run %q: %v", command, err))
		}
	}
	print(fmt.Sprintf("gate: %s exited with %d after %s", name, code, d.Round(time.Millisecond)))
	return code, d, kept.buf.Bytes()
}

func signalNumber(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal())
	}
	return 0
}

// tail keeps the last max bytes (at most twice that between trims) of a
// command's output: where linters print their score.
type tail struct {
	max int
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > 2*t.max {
		end := append([]byte(nil), t.buf.Bytes()[t.buf.Len()-t.max:]...)
		t.buf.Reset()
		t.buf.Write(end)
	}
	return len(p), nil
}

// lockedWriter serialises the command's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
