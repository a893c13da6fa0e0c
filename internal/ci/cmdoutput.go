package ci

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxLine is how much of a line without a newline is held before it is
// written in pieces.
const maxLine = 64 << 10

// CommandOutput is the writer for the output of a command a tool runs (a
// build's RUN, a gate command) into the job's log: whole lines, each after
// prefix, every registered secret masked, and none able to act as a
// platform command — GitHub's ::command (even after blanks) and Azure
// Pipelines' ##vso[ and ##[ are defused on every platform, so a command's
// output cannot set outputs, masks or variables of the job. Stdout and
// stderr may share it. Close writes a last partial line.
func (j *Job) CommandOutput(prefix string) io.WriteCloser {
	return &commandOutput{w: j.logs.masked(), prefix: prefix}
}

type commandOutput struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

func (c *commandOutput) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(c.partial[:i])
		c.partial = c.partial[i+1:]
	}
	if len(c.partial) > maxLine {
		c.line(c.partial)
		c.partial = nil
	}
	return len(p), nil
}

func (c *commandOutput) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.line(c.partial)
		c.partial = nil
	}
	return nil
}

func (c *commandOutput) line(b []byte) {
	s := strings.TrimRight(string(b), "\r")
	_, _ = io.WriteString(c.w, c.prefix+defuseCommands(s)+"\n")
}

// defuseCommands keeps a line of plain text from being read as a platform
// command: a GitHub workflow command (a line that starts with "::" once
// trimmed) gets a fullwidth colon, an Azure Pipelines logging command
// (##vso[ anywhere, ##[ at the start) fullwidth number signs. The text
// stays readable.
func defuseCommands(s string) string {
	if t := strings.TrimLeft(s, " \t"); strings.HasPrefix(t, "::") {
		i := len(s) - len(t)
		s = s[:i] + "：" + s[i+1:]
	}
	return azureDefuse(s)
}
