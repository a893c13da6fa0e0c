package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelayDoublesWithinJitterUpToTheCap(t *testing.T) {
	for _, tc := range []struct {
		attempt  int
		low, top time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{10, 500 * time.Millisecond, time.Second}, // capped
	} {
		for range 50 {
			d := Delay(100*time.Millisecond, time.Second, tc.attempt)
			require.GreaterOrEqual(t, d, tc.low, "attempt %d", tc.attempt)
			require.LessOrEqual(t, d, tc.top, "attempt %d", tc.attempt)
		}
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	require.Less(t, time.Since(start), time.Second)
	require.NoError(t, Sleep(context.Background(), time.Millisecond))
}
