package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestLongJobsAreNotClaimedAheadOfFreeWorkers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		release := make(chan struct{})
		var mu sync.Mutex
		ran := map[string]int{}
		handler := func(owner string) jobs.HandlerFunc {
			return func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				mu.Lock()
				ran[owner]++
				mu.Unlock()
				<-release
				return nil, nil
			}
		}
		a := newRunner(t, repo, jobs.WithConcurrency(2), jobs.WithOwner("a"))
		a.Handle("long", handler("a"))
		b := newRunner(t, reopen(t, repo), jobs.WithConcurrency(2), jobs.WithOwner("b"))
		b.Handle("long", handler("b"))
		reqs := make([]jobs.EnqueueRequest, 4)
		for i := range reqs {
			reqs[i] = jobs.EnqueueRequest{Kind: "long"}
		}
		js, err := a.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		start(t, a)
		start(t, b)
		// Each runner holds only as many jobs as it has free workers, so the
		// four long jobs spread over both.
		for _, j := range js {
			requireStatus(t, a, j.ID, jobs.StatusRunning)
		}
		close(release)
		for _, j := range js {
			require.Equal(t, jobs.StatusSucceeded, await(t, a, j.ID).Status)
		}
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, map[string]int{"a": 2, "b": 2}, ran)
	})
}

func TestBufferedJobsAreGivenBackWhenWorkersAreStuck(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		repo := memRepo(t)
		release := make(chan struct{})
		var releasedByA atomic.Int32
		handler := func(ran *atomic.Int32) jobs.HandlerFunc {
			return func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				if j.Priority > 0 {
					return nil, nil // quick
				}
				ran.Add(1)
				<-release // long
				return nil, nil
			}
		}
		var ranA, ranB atomic.Int32
		a, err := jobs.NewRunner(repo, jobs.WithConcurrency(1), jobs.WithOwner("a"),
			jobs.WithHooks(jobs.Hooks{OnReleased: func(*jobs.Job) { releasedByA.Add(1) }}))
		require.NoError(t, err)
		a.Handle("k", handler(&ranA))
		b, err := jobs.NewRunner(repo, jobs.WithConcurrency(9), jobs.WithOwner("b"), jobs.WithPollInterval(50*time.Millisecond))
		require.NoError(t, err)
		b.Handle("k", handler(&ranB))

		// Quick jobs first make A prefetch; the long ones behind them get
		// buffered while A's only worker is stuck in the first long one.
		var reqs []jobs.EnqueueRequest
		for range 5 {
			reqs = append(reqs, jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithPriority(10)}})
		}
		for range 10 {
			reqs = append(reqs, jobs.EnqueueRequest{Kind: "k"})
		}
		js, err := a.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		stopA := runInBubble(t, a)
		time.Sleep(time.Second)
		stopB := runInBubble(t, b)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, int32(1), ranA.Load(), "A runs one long job at a time")
		require.Equal(t, int32(9), ranB.Load(), "B took over the jobs A had buffered")
		require.Equal(t, int32(9), releasedByA.Load())
		close(release)
		for _, j := range js {
			final, err := a.Await(t.Context(), j.ID)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusSucceeded, final.Status)
			require.Equal(t, 1, final.Attempt, "a given-back job's claim is not counted")
		}
		require.NoError(t, stopA())
		require.NoError(t, stopB())
	})
}
