package testrig

import (
	"bytes"
	"log/slog"
	"sync"
)

// Logs is a concurrency-safe log sink: what a component logged, for a test
// to read.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// NewLogger returns a text logger of level and above writing into a new
// Logs.
func NewLogger(level slog.Leveler) (*slog.Logger, *Logs) {
	l := &Logs{}
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level})), l
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
