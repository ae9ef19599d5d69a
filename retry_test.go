package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/logbuf"
	"github.com/stretchr/testify/require"
)

// runInBubble runs r inside the current synctest bubble until stop is
// called; stop waits for Run to return.
func runInBubble(t *testing.T, r *jobs.Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	return func() error { cancel(); return <-errc }
}

func TestRetryTwiceThenSucceedWithBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		repo := memRepo(t)
		const base = 100 * time.Millisecond
		// An hour-long poll: only the runner's own retry wake-up can start
		// the next attempt, so attempt times show the backoff exactly.
		r, err := jobs.NewRunner(repo, jobs.WithRetryBackoff(base, time.Minute), jobs.WithPollInterval(time.Hour))
		require.NoError(t, err)
		var starts []time.Time
		r.Handle("flaky", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			starts = append(starts, time.Now())
			if j.Attempt < 3 {
				return nil, errors.New("flake " + string(rune('0'+j.Attempt)))
			}
			return json.RawMessage(`"ok"`), nil
		})
		stop := runInBubble(t, r)
		j, err := r.Enqueue(t.Context(), "flaky", nil, jobs.WithMaxAttempts(3))
		require.NoError(t, err)
		final, err := r.Await(t.Context(), j.ID)
		require.NoError(t, err)
		require.NoError(t, stop())

		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, 3, final.Attempt)
		require.Len(t, starts, 3)
		// Backoff after attempt n is in [base·2^(n-1)/2, base·2^(n-1)].
		d1, d2 := starts[1].Sub(starts[0]), starts[2].Sub(starts[1])
		require.GreaterOrEqual(t, d1, base/2)
		require.LessOrEqual(t, d1, base)
		require.GreaterOrEqual(t, d2, base)
		require.LessOrEqual(t, d2, 2*base)
		require.Len(t, final.Errors, 2)
		require.Equal(t, 1, final.Errors[0].Attempt)
		require.Equal(t, "flake 1", final.Errors[0].Error)
		require.Equal(t, 2, final.Errors[1].Attempt)
		require.Equal(t, "flake 2", final.Errors[1].Error)
	})
}

func TestRetryAfterSetsTheDelayAndLastAttemptFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r, err := jobs.NewRunner(memRepo(t), jobs.WithPollInterval(time.Hour))
		require.NoError(t, err)
		var starts []time.Time
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			starts = append(starts, time.Now())
			return nil, jobs.RetryAfter(3*time.Second, errors.New("busy"))
		})
		stop := runInBubble(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithMaxAttempts(2))
		require.NoError(t, err)
		final, err := r.Await(t.Context(), j.ID)
		require.NoError(t, err)
		require.NoError(t, stop())
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Equal(t, 2, final.Attempt)
		require.Len(t, starts, 2)
		require.Equal(t, 3*time.Second, starts[1].Sub(starts[0]))
	})
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return nil, jobs.Permanent(errors.New("bad input"))
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithMaxAttempts(5))
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Equal(t, 1, final.Attempt)
		require.Equal(t, "bad input", final.Error)
	})
}

func TestAttemptsUsedUpFail(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return nil, errors.New("nope")
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithMaxAttempts(3))
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Equal(t, 3, final.Attempt)
		require.Len(t, final.Errors, 3)
	})
}

func TestPanicBecomesFailedAttemptAndOthersRun(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		var logs logbuf.Buffer
		r := newRunner(t, repo, jobs.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		r.Handle("boom", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			panic("kaboom")
		})
		r.Handle("fine", noop)
		start(t, r)
		bad, err := r.Enqueue(t.Context(), "boom", nil, jobs.WithMaxAttempts(2))
		require.NoError(t, err)
		good, err := r.Enqueue(t.Context(), "fine", nil)
		require.NoError(t, err)
		final := await(t, r, bad.ID)
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Equal(t, 2, final.Attempt, "a panic is a failed attempt that is retried")
		require.Equal(t, "panic: kaboom", final.Error)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, good.ID).Status)
		require.Contains(t, logs.String(), "handler panicked")
		require.Contains(t, logs.String(), "kaboom")
		require.Contains(t, logs.String(), "retry_test.go", "the stack is logged")
	})
}

func TestTimeoutCancelsWithErrTimeout(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		causes := make(chan error, 2)
		wait := func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, ctx.Err()
		}
		r.Handle("per-job", wait)
		r.Handle("per-kind", wait, jobs.WithKindTimeout(20*time.Millisecond))
		start(t, r)
		j1, err := r.Enqueue(t.Context(), "per-job", nil, jobs.WithTimeout(20*time.Millisecond), jobs.WithMaxAttempts(1))
		require.NoError(t, err)
		j2, err := r.Enqueue(t.Context(), "per-kind", nil, jobs.WithMaxAttempts(1))
		require.NoError(t, err)
		for range 2 {
			require.ErrorIs(t, recv(t, causes), jobs.ErrTimeout)
		}
		for _, j := range []*jobs.Job{j1, j2} {
			final := await(t, r, j.ID)
			require.Equal(t, jobs.StatusFailed, final.Status)
			require.Contains(t, final.Error, "timeout")
		}
	})
}
