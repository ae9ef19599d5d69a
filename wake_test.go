package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// With the poll interval at an hour only the wake timer can start delayed
// jobs; it must start each of them at its time while a thousand others wait,
// and nothing of it may fire once Run has returned.
func TestWakeTimerStartsDelayedJobsAndStopsWithRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		repo := NewMemoryRepository()
		defer repo.Close()
		r, err := NewRunner(repo, WithPollInterval(time.Hour))
		require.NoError(t, err)
		started := make(chan time.Time, 4)
		r.Handle("k", func(context.Context, *Job, Reporter) (json.RawMessage, error) {
			started <- time.Now()
			return nil, nil
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait() // the first claim has found nothing

		reqs := make([]EnqueueRequest, 1000)
		for i := range reqs {
			reqs[i] = EnqueueRequest{Kind: "k", Options: []EnqueueOption{WithRunAt(time.Now().Add(time.Hour - time.Duration(i)*time.Second))}}
		}
		_, err = r.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		begin := time.Now()
		for _, d := range []time.Duration{50 * time.Millisecond, 120 * time.Millisecond} {
			_, err := r.Enqueue(t.Context(), "k", nil, WithRunAt(time.Now().Add(d)))
			require.NoError(t, err)
		}
		for _, d := range []time.Duration{50 * time.Millisecond, 120 * time.Millisecond} {
			select {
			case at := <-started:
				require.Equal(t, d, at.Sub(begin), "the job started late")
			case <-time.After(time.Minute):
				t.Fatalf("the job delayed by %v did not start", d)
			}
		}

		cancel()
		require.NoError(t, <-done)
		select {
		case <-r.wake: // a wake-up that came before Run returned
		default:
		}
		time.Sleep(2 * time.Hour) // past every delay
		synctest.Wait()
		require.Empty(t, r.wake, "a wake-up timer fired after Run returned")
	})
}
