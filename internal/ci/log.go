package ci

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-githubactions"
)

// logCore formats and writes log lines for every handler derived from it.
type logCore struct {
	mu       sync.Mutex
	buf      bytes.Buffer // attrs rendered by the inner TextHandler
	platform Platform
	out      io.Writer // masked
	gh       *githubactions.Action
	masks    *masker
	debug    bool
	// azure writes an Azure Pipelines logging command (redacted).
	azure func(command string, props [][2]string, data string)
}

// logHandler writes readable lines: the message, then key=value attributes
// (rendered by slog's TextHandler), no timestamps. Levels other than info
// are GitHub workflow commands (::warning::, ::error::, ::debug::) on GitHub
// and a "warning: " style prefix elsewhere. Every masked secret is redacted.
type logHandler struct {
	core  *logCore
	inner slog.Handler
}

func newLogHandler(core *logCore) *logHandler {
	inner := slog.NewTextHandler(&core.buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return &logHandler{core: core, inner: inner}
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.core.debug
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	bare := slog.NewRecord(time.Time{}, r.Level, "", 0)
	r.Attrs(func(a slog.Attr) bool {
		bare.AddAttrs(h.core.redactAttr(a))
		return true
	})
	h.core.mu.Lock()
	h.core.buf.Reset()
	err := h.inner.Handle(ctx, bare)
	attrs := strings.TrimSpace(h.core.buf.String())
	h.core.mu.Unlock()
	if err != nil {
		return err
	}
	line := r.Message
	if attrs != "" {
		if line != "" {
			line += " "
		}
		line += attrs
	}
	h.core.emit(r.Level, line)
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.core.redactAttr(a)
	}
	return &logHandler{core: h.core, inner: h.inner.WithAttrs(clean)}
}

// redactAttr redacts an attribute's value before it is quoted: a secret
// that reaches the log already quoted (an error wrapping %q) would come out
// quoted twice, a form the line-level redaction does not know.
func (c *logCore) redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = c.redactAttr(g)
		}
		return slog.Group(a.Key, clean...)
	}
	s := v.String()
	if r := c.masks.redact(s); r != s {
		return slog.String(a.Key, r)
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{core: h.core, inner: h.inner.WithGroup(name)}
}

// emit writes one log entry at a level, redacted.
func (c *logCore) emit(level slog.Level, msg string) {
	msg = c.masks.redact(msg)
	if c.platform == PlatformGitHub {
		switch {
		case level >= slog.LevelError:
			c.gh.Errorf("%s", msg)
		case level >= slog.LevelWarn:
			c.gh.Warningf("%s", msg)
		case level < slog.LevelInfo:
			c.gh.Debugf("%s", msg)
		default:
			_, _ = io.WriteString(c.out, neutralizeCommands(msg)+"\n")
		}
		return
	}
	if c.platform == PlatformAzure && level != slog.LevelInfo {
		switch {
		case level >= slog.LevelError:
			c.azure("task.logissue", [][2]string{{"type", "error"}}, msg)
		case level >= slog.LevelWarn:
			c.azure("task.logissue", [][2]string{{"type", "warning"}}, msg)
		default:
			c.azure("task.debug", nil, msg)
		}
		return
	}
	prefix := ""
	switch {
	case level >= slog.LevelError:
		prefix = "error: "
	case level >= slog.LevelWarn:
		prefix = "warning: "
	case level < slog.LevelInfo:
		prefix = "debug: "
	}
	_, _ = io.WriteString(c.out, prefix+msg+"\n")
}

// neutralizeCommands keeps a plain log line from being read as a workflow
// command by the GitHub runner, which treats any line starting with "::"
// (after trimming whitespace) as one: a registry error body or a tag name
// must not be able to run ::add-mask:: or ::stop-commands::. A zero-width
// space in front is invisible and not whitespace to the runner.
func neutralizeCommands(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "::") {
			lines[i] = "\u200b" + l
		}
	}
	return strings.Join(lines, "\n")
}
