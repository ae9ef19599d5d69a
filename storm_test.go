package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrand"
	"github.com/stretchr/testify/require"
)

// TestCancelAndRestartStorm cancels random jobs while runners are stopped
// and restarted under them (RELIABILITY CF-10, scaled down; set
// JOBS_LONG_TESTS=1 for the full size). Every job must end terminal, never
// run twice at the same time, and a succeeded job must have had a handler
// return a result. The random choices replay with JOBS_TEST_SEED.
func TestCancelAndRestartStorm(t *testing.T) {
	t.Parallel()
	jobsN, rounds := 60, 4
	if os.Getenv("JOBS_LONG_TESTS") != "" {
		jobsN, rounds = 1000, 100
	}
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		rng := testrand.New(t)
		var (
			running   sync.Map // job ID → *atomic.Int32 of live handlers
			overlap   atomic.Bool
			succeeded sync.Map // job ID → true once a handler returned a result
		)
		handler := func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			c, _ := running.LoadOrStore(j.ID, new(atomic.Int32))
			if c.(*atomic.Int32).Add(1) > 1 {
				overlap.Store(true)
			}
			defer c.(*atomic.Int32).Add(-1)
			for i := range 5 {
				if err := p.Report(float64(i)/5, "step"); err != nil {
					return nil, err
				}
				if !sleepOrDone(ctx, time.Duration(rng.IntN(3000))*time.Microsecond) {
					return nil, context.Cause(ctx)
				}
			}
			succeeded.Store(j.ID, true)
			return json.RawMessage(`true`), nil
		}
		first := newRunner(t, repo)
		first.Handle("k", handler)
		reqs := make([]jobs.EnqueueRequest, jobsN)
		for i := range reqs {
			reqs[i] = jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithMaxAttempts(100)}}
		}
		js, err := first.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		ids := make([]uuid.UUID, len(js))
		for i, j := range js {
			ids[i] = j.ID
		}

		// Runners alternate between two connection pools, as two processes.
		pools := []jobs.JobRepository{repo, reopen(t, repo)}
		for round := range rounds {
			r := first
			if round > 0 {
				r = newRunner(t, pools[round%2], jobs.WithShutdown(time.Duration(rng.IntN(20))*time.Millisecond+time.Nanosecond, 0))
				r.Handle("k", handler)
			}
			stop := start(t, r)
			var wg sync.WaitGroup
			wg.Go(func() {
				for range jobsN / 10 {
					_, err := r.Cancel(t.Context(), ids[rng.IntN(len(ids))])
					if err != nil && !errors.Is(err, jobs.ErrConflict) {
						t.Errorf("cancel: %v", err)
					}
					time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
				}
			})
			time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
			err := stop()
			wg.Wait()
			if err != nil {
				require.ErrorIs(t, err, jobs.ErrClosed)
			}
		}

		// A last runner drains what is left.
		last := newRunner(t, pools[1])
		last.Handle("k", handler)
		start(t, last)
		for _, id := range ids {
			j := await(t, last, id)
			require.True(t, j.Status.Terminal())
			if j.Status == jobs.StatusSucceeded {
				_, ok := succeeded.Load(id)
				require.True(t, ok, "job %s succeeded without a handler returning a result", id)
			}
			require.LessOrEqual(t, j.Attempt, j.MaxAttempts)
		}
		require.False(t, overlap.Load(), "a job ran twice at the same time")
	})
}
