package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

// A handler returns its result while another connection holds the
// database's write lock for more than two leases (a backup, a migration):
// the result is stored when the lock goes, the job is neither failed as
// "lease expired" nor run again, though every lease ran out meanwhile and
// two runners' rescuers (the owner's and another process's) were waiting
// for the same lock.
func TestWriteOutageLosesNoFinishedOutcome(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		if _, ok := repo.(*jobsbun.Repository); !ok {
			t.Skip("the memory repository has no write lock to hold")
		}
		const lease = time.Second
		var starts atomic.Int32
		started, proceed := make(chan struct{}, 1), make(chan struct{})
		// The owner's renewals and outcome land last when the lock goes:
		// its writes wait 300 ms longer than the other runner's rescue.
		late := &lateWrites{JobRepository: repo, open: make(chan struct{})}
		close(late.open)
		owner := newRunner(t, late, jobs.WithLeaseDuration(lease))
		owner.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			starts.Add(1)
			started <- struct{}{}
			<-proceed
			return json.RawMessage(`"done"`), nil
		})
		// Another process: it only rescues.
		other := newRunner(t, reopen(t, repo), jobs.WithLeaseDuration(lease))
		start(t, owner)
		start(t, other)
		j, err := owner.Enqueue(t.Context(), "k", nil, jobs.WithMaxAttempts(1))
		require.NoError(t, err)
		recv(t, started)

		release := testrepo.LockWrites(t, reopen(t, repo).(*jobsbun.Repository))
		late.hold()
		close(proceed) // the result waits for the lock
		time.Sleep(2*lease + lease/2)
		release()
		time.Sleep(300 * time.Millisecond)
		late.release()

		final := await(t, owner, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status, "error: %s", final.Error)
		require.JSONEq(t, `"done"`, string(final.Result))
		require.Equal(t, int32(1), starts.Load(), "the handler ran again")
	})
}

// lateWrites holds the renewals and outcomes of a runner while closed, as
// a process whose writes are slower to get the lock than another's.
type lateWrites struct {
	jobs.JobRepository
	mu   sync.Mutex
	open chan struct{}
}

func (l *lateWrites) hold() {
	l.mu.Lock()
	l.open = make(chan struct{})
	l.mu.Unlock()
}

func (l *lateWrites) release() {
	l.mu.Lock()
	close(l.open)
	l.mu.Unlock()
}

func (l *lateWrites) wait(ctx context.Context) error {
	l.mu.Lock()
	ch := l.open
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return &jobs.Error{Code: jobs.ErrUnavailable, Op: "test", Msg: "interrupted", Err: ctx.Err()}
	}
}

func (l *lateWrites) Heartbeat(ctx context.Context, lease time.Duration, ls ...jobs.Lease) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.JobRepository.Heartbeat(ctx, lease, ls...)
}

func (l *lateWrites) UpdateProgress(ctx context.Context, lease time.Duration, ups ...jobs.ProgressUpdate) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.JobRepository.UpdateProgress(ctx, lease, ups...)
}

func (l *lateWrites) Finish(ctx context.Context, cs ...jobs.Completion) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.JobRepository.Finish(ctx, cs...)
}
