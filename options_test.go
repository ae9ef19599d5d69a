package jobs_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/logbuf"
	"github.com/stretchr/testify/require"
)

func TestNewRunnerValidatesOptions(t *testing.T) {
	t.Parallel()
	repo := jobs.NewMemoryRepository()
	_, err := jobs.NewRunner(nil)
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	for _, tc := range []struct {
		name string
		opt  jobs.Option
	}{
		{"concurrency 0", jobs.WithConcurrency(0)},
		{"concurrency too high", jobs.WithConcurrency(10001)},
		{"lease under a second", jobs.WithLeaseDuration(999 * time.Millisecond)},
		{"poll 0", jobs.WithPollInterval(0)},
		{"refresh 0", jobs.WithRefreshInterval(0)},
		{"refresh negative", jobs.WithRefreshInterval(-time.Second)},
		{"refresh over lease", jobs.WithRefreshInterval(time.Hour)},
		{"grace negative", jobs.WithShutdown(-time.Second, 0)},
		{"stop negative", jobs.WithShutdown(time.Second, -time.Second)},
		{"progress interval 0", jobs.WithProgressInterval(0)},
		{"retention negative", jobs.WithRetention(-time.Hour)},
		{"backoff base 0", jobs.WithRetryBackoff(0, time.Second)},
		{"backoff max under base", jobs.WithRetryBackoff(time.Second, time.Millisecond)},
		{"nil logger", jobs.WithLogger(nil)},
		{"bad queue", jobs.WithQueues("ok", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := jobs.NewRunner(repo, tc.opt)
			require.ErrorIs(t, err, jobs.ErrInvalidArgument)
			require.Nil(t, r)
		})
	}
	r1, err := jobs.NewRunner(repo, jobs.WithLeaseDuration(time.Second), jobs.WithShutdown(0, 0),
		jobs.WithRetention(0), jobs.WithConcurrency(10000))
	require.NoError(t, err)
	r2, err := jobs.NewRunner(repo)
	require.NoError(t, err)
	require.NotEmpty(t, r1.Owner())
	require.NotEqual(t, r1.Owner(), r2.Owner(), "default owners are unique")
}

// TestRunnerLogsNothingByDefault checks that a runner without WithLogger
// writes nothing, not even to slog's default logger. Not parallel: it swaps
// the process-wide default logger.
func TestRunnerLogsNothingByDefault(t *testing.T) {
	var logs logbuf.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	repo := jobs.NewMemoryRepository()
	r, err := jobs.NewRunner(repo)
	require.NoError(t, err)
	r.Handle("boom", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
		panic("logged only with WithLogger")
	})
	stop := start(t, r)
	j, err := r.Enqueue(t.Context(), "boom", nil, jobs.WithMaxAttempts(1))
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, await(t, r, j.ID).Status)
	require.NoError(t, stop())
	require.Empty(t, logs.String())
}
