package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunnerDefaultsMatchTheirDocs pins the defaults to the numbers that the
// options' doc comments state, so that neither changes alone.
func TestRunnerDefaultsMatchTheirDocs(t *testing.T) {
	t.Parallel()
	c, err := newRunnerConfig(nil)
	require.NoError(t, err)
	require.Equal(t, 8, c.concurrency)
	require.Equal(t, 30*time.Second, c.lease)
	require.Equal(t, time.Second, c.poll)
	require.Equal(t, 20*time.Millisecond, c.refresh)
	require.Equal(t, 10*time.Second, c.grace)
	require.Equal(t, 5*time.Second, c.stopTimeout)
	require.Equal(t, 250*time.Millisecond, c.progress)
	require.Equal(t, 168*time.Hour, c.retention)
	require.Equal(t, time.Second, c.retryBase)
	require.Equal(t, time.Hour, c.retryMax)
}

func TestWithShutdownZeroKeepsEachDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		opts        []Option
		grace, stop time.Duration
	}{
		{"none", nil, 10 * time.Second, 5 * time.Second},
		{"both zero", []Option{WithShutdown(0, 0)}, 10 * time.Second, 5 * time.Second},
		{"grace only", []Option{WithShutdown(time.Second, 0)}, time.Second, 5 * time.Second},
		{"stop only", []Option{WithShutdown(0, time.Second)}, 10 * time.Second, time.Second},
		{"both", []Option{WithShutdown(time.Millisecond, 2*time.Millisecond)}, time.Millisecond, 2 * time.Millisecond},
		{"zero keeps an earlier value", []Option{WithShutdown(time.Second, time.Minute), WithShutdown(0, time.Hour)}, time.Second, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := newRunnerConfig(tc.opts)
			require.NoError(t, err)
			require.Equal(t, tc.grace, c.grace)
			require.Equal(t, tc.stop, c.stopTimeout)
		})
	}
}
