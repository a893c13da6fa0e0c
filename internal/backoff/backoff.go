// Package backoff holds what retrying code shares: the exponential delay
// with jitter, and a wait that ends early when the context does.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is initial·2^(attempt-1), capped at max, with the upper half
// jittered: a random duration between half of it and all of it.
func Delay(initial, max time.Duration, attempt int) time.Duration {
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}

// Sleep waits d, or until ctx ends (returning its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
