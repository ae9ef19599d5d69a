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
		handler := func(owner string) func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
			return func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				mu.Lock()
				ran[owner]++
				mu.Unlock()
				<-release
				return nil, nil
			}
		}
		a := newRunner(t, repo, jobs.WithConcurrency(2))
		a.Handle("long", handler("a"))
		b := newRunner(t, reopen(t, repo), jobs.WithConcurrency(2))
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
		handler := func(ran *atomic.Int32) func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
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
		a, err := jobs.NewRunner(repo, jobs.WithConcurrency(1),
			jobs.WithHooks(jobs.Hooks{OnReleased: func(*jobs.Job) { releasedByA.Add(1) }}))
		require.NoError(t, err)
		a.Handle("k", handler(&ranA))
		b, err := jobs.NewRunner(repo, jobs.WithConcurrency(9), jobs.WithPollInterval(50*time.Millisecond))
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

// slowClaimReply is a repository whose claims commit at once but whose
// replies take delay to come back, as over a slow network: a claim cut off
// by a deadline then has taken jobs that its caller never learns about.
type slowClaimReply struct {
	jobs.JobRepository
	delay   time.Duration
	replied chan struct{} // told when a reply carrying jobs starts its delay
}

func (s *slowClaimReply) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	js, err := s.JobRepository.Claim(ctx, q)
	if err != nil || len(js) == 0 {
		return js, err
	}
	select {
	case s.replied <- struct{}{}:
	default:
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return js, nil
	case <-ctx.Done():
		return nil, &jobs.Error{Code: jobs.ErrUnavailable, Op: "claim", Msg: "reply cut off", Err: ctx.Err()}
	}
}

// A claim that committed is never cut off by the runner: its jobs run, and
// no attempt is counted for a handler that never ran (max attempts 1 would
// otherwise fail the job "lease expired" without running it).
func TestSlowClaimReplyStillRunsItsJobs(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		const lease = time.Second
		slow := &slowClaimReply{JobRepository: repo, delay: lease / 2, replied: make(chan struct{}, 1)}
		r := newRunner(t, slow, jobs.WithLeaseDuration(lease))
		var runs atomic.Int32
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			runs.Add(1)
			return nil, nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithMaxAttempts(1))
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status, "error: %s", final.Error)
		require.Equal(t, int32(1), runs.Load())
	})
}

// Shutdown while a claim's reply is on its way: the runner waits for it and
// hands the claimed jobs back at once, attempt not counted.
func TestShutdownDuringAClaimHandsItsJobsBack(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		slow := &slowClaimReply{JobRepository: repo, delay: 300 * time.Millisecond, replied: make(chan struct{}, 1)}
		r := newRunner(t, slow)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			t.Error("a handler ran during shutdown")
			return nil, nil
		})
		stop := start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		recv(t, slow.replied)
		require.NoError(t, stop())
		got, err := repo.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.Zero(t, got.Attempt)
	})
}
