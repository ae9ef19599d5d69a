package jobs_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestHeartbeatsKeepALongJobLeased(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		var runs atomic.Int32
		long := func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			runs.Add(1)
			if !sleepOrDone(ctx, 4500*time.Millisecond) { // over two leases, no progress
				return nil, context.Cause(ctx)
			}
			return nil, nil
		}
		r1 := newRunner(t, repo, jobs.WithLeaseDuration(2*time.Second))
		r1.Handle("k", long)
		start(t, r1)
		j, err := r1.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		requireStatus(t, r1, j.ID, jobs.StatusRunning)
		r2 := newRunner(t, reopen(t, repo), jobs.WithLeaseDuration(2*time.Second)) // its rescuer must find nothing
		r2.Handle("k", long)
		start(t, r2)
		final := await(t, r1, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, 1, final.Attempt)
		require.Equal(t, int32(1), runs.Load())
	})
}

func TestLeaseExpiryRescueFencesOutTheFirstRunner(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		repoA := newFaultRepo(repo)
		// One slot, busy with the paused handler: A cannot claim the job again.
		a := newRunner(t, repoA, jobs.WithLeaseDuration(time.Second), jobs.WithConcurrency(1))
		startedA := make(chan struct{})
		proceed := make(chan struct{})
		causeA := make(chan error, 1)
		a.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			close(startedA)
			<-proceed // a long pause: the process looks dead meanwhile
			if err := p.Report(0.9, "late write"); err != nil {
				return nil, err
			}
			<-ctx.Done() // the refused write cancels the handler
			causeA <- context.Cause(ctx)
			return json.RawMessage(`"A"`), nil
		})
		start(t, a)
		j, err := a.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		<-startedA
		repoA.setDropBeats(true)

		b := newRunner(t, reopen(t, repo), jobs.WithLeaseDuration(time.Second))
		b.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return json.RawMessage(`"B"`), nil
		})
		start(t, b)
		final := await(t, b, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, 2, final.Attempt, "the rescued attempt stays counted")
		require.JSONEq(t, `"B"`, string(final.Result))

		// A wakes up: its writes are fenced out and its handler is stopped.
		repoA.setDropBeats(false)
		close(proceed)
		require.ErrorIs(t, recv(t, causeA), jobs.ErrLeaseLost)
		after := get(t, b, j.ID)
		require.Equal(t, jobs.StatusSucceeded, after.Status)
		require.JSONEq(t, `"B"`, string(after.Result))
		require.Equal(t, 1.0, after.Progress.Fraction, "A's late progress was refused")
		require.Equal(t, 2, after.Attempt)
	})
}

func TestFailingHeartbeatsCancelBeforeTheLeaseExpires(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		faulty := newFaultRepo(repo)
		// A lease of 3 s leaves the runner a 1.5 s margin to give it up in
		// time, even on a loaded machine.
		r := newRunner(t, faulty, jobs.WithLeaseDuration(3*time.Second))
		type seen struct {
			cause    error
			at       time.Time
			leaseEnd time.Time
		}
		got := make(chan seen, 1)
		started := make(chan struct{})
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			close(started)
			<-ctx.Done()
			now := time.Now()
			cur, err := repo.Get(context.WithoutCancel(ctx), j.ID)
			if err != nil {
				return nil, err
			}
			got <- seen{context.Cause(ctx), now, cur.LeaseExpiresAt}
			return nil, ctx.Err()
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		<-started
		faulty.setBeatErr(&jobs.Error{Code: jobs.ErrUnavailable, Op: "heartbeat", Msg: "injected"})
		s := recv(t, got)
		require.ErrorIs(t, s.cause, jobs.ErrLeaseLost)
		require.True(t, s.at.Before(s.leaseEnd), "cancelled at %v, after the lease ended at %v", s.at, s.leaseEnd)
		require.Equal(t, jobs.StatusRunning, get(t, r, j.ID).Status, "nothing written; the rescuer will requeue it")
	})
}

func TestCancelFromAnotherRunnerLandsViaRefresh(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		worker := newRunner(t, repo)
		started := make(chan struct{})
		cause := make(chan error, 1)
		worker.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil, ctx.Err()
		})
		start(t, worker)
		other := newRunner(t, reopen(t, repo))
		j, err := other.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		<-started
		c, err := other.Cancel(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusRunning, c.Status)
		require.True(t, c.CancelRequested)
		require.ErrorIs(t, recv(t, cause), jobs.ErrCanceled)
		final := await(t, other, j.ID)
		require.Equal(t, jobs.StatusCanceled, final.Status)
		require.Equal(t, 1, final.Attempt)
	})
}

// sleepOrDone waits d or until ctx is done, reporting whether d passed.
func sleepOrDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// hangingBeats is a repository whose heartbeats, once hang is set, wait
// until their context ends: a database that stopped answering.
type hangingBeats struct {
	jobs.JobRepository
	hang atomic.Bool
}

func (h *hangingBeats) Heartbeat(ctx context.Context, lease time.Duration, ls ...jobs.Lease) error {
	if h.hang.Load() {
		<-ctx.Done()
		return &jobs.Error{Code: jobs.ErrUnavailable, Op: "heartbeat", Msg: "interrupted", Err: ctx.Err()}
	}
	return h.JobRepository.Heartbeat(ctx, lease, ls...)
}

// A heartbeat that never returns does not hold up giving the lease up: the
// handler is cancelled with ErrLeaseLost before the lease expires.
func TestHangingHeartbeatsCancelBeforeTheLeaseExpires(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		hanging := &hangingBeats{JobRepository: repo}
		r := newRunner(t, hanging, jobs.WithLeaseDuration(3*time.Second))
		cause := make(chan error, 1)
		var deadline atomic.Int64
		started := make(chan struct{})
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			deadline.Store(j.LeaseExpiresAt.UnixNano())
			close(started)
			<-ctx.Done()
			if time.Now().UnixNano() >= deadline.Load() {
				t.Errorf("cancelled at %v, after the claimed lease ended", time.Now())
			}
			cause <- context.Cause(ctx)
			return nil, ctx.Err()
		})
		start(t, r)
		_, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		recv(t, started)
		hanging.hang.Store(true) // from now on no renewal lands: the claim's lease is the last
		require.ErrorIs(t, recv(t, cause), jobs.ErrLeaseLost)
	})
}
