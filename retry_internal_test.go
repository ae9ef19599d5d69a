package jobs

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffBoundsAndCap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		attempt   int
		base, max time.Duration
		want      time.Duration // the upper bound; the delay is in [want/2, want]
	}{
		{"first", 1, time.Second, time.Hour, time.Second},
		{"second doubles", 2, time.Second, time.Hour, 2 * time.Second},
		{"tenth", 10, time.Second, time.Hour, 512 * time.Second},
		{"capped", 20, time.Second, time.Hour, time.Hour},
		{"shift past 63 bits", 64, time.Second, time.Hour, time.Hour},
		{"attempt 10 000", 10000, time.Second, time.Hour, time.Hour},
		{"huge max", 10000, time.Nanosecond, time.Duration(1<<63 - 1), time.Duration(1<<63 - 1)},
		{"zero attempt counts as first", 0, time.Second, time.Hour, time.Second},
		{"negative attempt", -5, time.Second, time.Hour, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				d := backoff(tt.attempt, tt.base, tt.max)
				require.GreaterOrEqual(t, d, tt.want/2)
				require.LessOrEqual(t, d, tt.want)
			}
		})
	}
}

func TestBackoffRangesNeverShrink(t *testing.T) {
	t.Parallel()
	// The lowest delay of attempt n+1 is at least the highest of attempt n.
	for a := 1; a < 200; a++ {
		hi := backoff(a, time.Millisecond, time.Hour)
		for range 20 {
			require.GreaterOrEqual(t, backoff(a+1, time.Millisecond, time.Hour), min(hi, time.Hour/2), fmt.Sprint("attempt ", a))
		}
	}
}
