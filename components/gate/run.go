package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	lw := &lineWriter{console: o.Console}
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = o.Workspace
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	lw.flush()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			code = ee.ExitCode()
		case errors.As(err, &ee):
			code = 128 + signalNumber(ee)
			lw.printLine(fmt.Sprintf("gate: %s was killed: %v", name, err))
		default:
			code = 127
			lw.printLine(fmt.Sprintf("gate: could not run %q: %v", command, err))
		}
	}
	lw.printLine(fmt.Sprintf("gate: %s exited with %d after %s", name, code, d.Round(time.Millisecond)))
	return code, d, lw.kept.Bytes()
}

func signalNumber(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal())
	}
	return 0
}

// lineWriter passes whole lines to the console and keeps the tail of the
// output. Stdout and stderr share it, so it locks.
type lineWriter struct {
	mu      sync.Mutex
	console Console
	partial []byte
	kept    bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kept.Write(p)
	if w.kept.Len() > 2*maxKeptOutput {
		tail := append([]byte(nil), w.kept.Bytes()[w.kept.Len()-maxKeptOutput:]...)
		w.kept.Reset()
		w.kept.Write(tail)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.print(string(bytes.TrimRight(w.partial[:i], "\r")))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64<<10 { // a very long line: pass it on in pieces
		w.print(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.print(string(w.partial))
		w.partial = nil
	}
}

func (w *lineWriter) printLine(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.print(s)
}

func (w *lineWriter) print(s string) {
	if w.console != nil {
		w.console.Print(s)
	}
}
