package jobs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// livenessRepo is a memory repository with the owner locks that the runner
// looks for (jobsbun has them on SQLite): HoldOwner records the owner, and
// RescueDead hands back the jobs put in dead.
type livenessRepo struct {
	jobs.JobRepository
	unsupported bool
	holdErr     error // HoldOwner's error, when set

	mu       sync.Mutex // guards the fields below
	held     string
	released int
	dead     []jobs.Lease
	claimed  bool // a claim came before HoldOwner
	checks   atomic.Int64
}

func (l *livenessRepo) HoldOwner(_ context.Context, owner string) (func(), error) {
	if l.unsupported {
		return nil, &jobs.Error{Code: jobs.ErrInvalidArgument, Op: "hold owner", Err: errors.ErrUnsupported}
	}
	if l.holdErr != nil {
		return nil, l.holdErr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = owner
	return func() { l.mu.Lock(); l.released++; l.mu.Unlock() }, nil
}

func (l *livenessRepo) RescueDead(ctx context.Context, limit int) ([]*jobs.Job, error) {
	l.checks.Add(1)
	l.mu.Lock()
	dead := l.dead
	l.dead = nil
	l.mu.Unlock()
	var out []*jobs.Job
	for _, ls := range dead {
		if err := l.JobRepository.Release(ctx, ls); err != nil {
			return out, err
		}
		j, err := l.Get(ctx, ls.JobID)
		if err != nil {
			return out, err
		}
		out = append(out, j)
	}
	return out, nil
}

func (l *livenessRepo) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	l.mu.Lock()
	if l.held == "" {
		l.claimed = true
	}
	l.mu.Unlock()
	return l.JobRepository.Claim(ctx, q)
}

func TestRunnerHoldsOwnerAndRescuesDead(t *testing.T) {
	t.Parallel()
	repo := &livenessRepo{JobRepository: memRepo(t)}
	// A dead runner's job, leased for an hour.
	j := &jobs.Job{Kind: "k"}
	require.NoError(t, repo.Create(t.Context(), j))
	js, err := repo.JobRepository.Claim(t.Context(), jobs.ClaimQuery{Owner: "ghost", Limit: 1, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, js, 1)

	r := newRunner(t, repo, jobs.WithPollInterval(time.Hour)) // only the rescue can wake it
	r.Handle("k", noop)
	stop := start(t, r)
	require.Eventually(t, func() bool { return repo.checks.Load() >= 2 }, 5*time.Second, time.Millisecond)
	repo.mu.Lock()
	require.Equal(t, r.Owner(), repo.held)
	require.False(t, repo.claimed, "the owner is held before the first claim")
	repo.dead = []jobs.Lease{js[0].Lease()}
	repo.mu.Unlock()
	require.Equal(t, jobs.StatusSucceeded, await(t, r, j.ID).Status)

	require.NoError(t, stop())
	repo.mu.Lock()
	defer repo.mu.Unlock()
	require.Equal(t, 1, repo.released, "released once when Run returns")
}

func TestRunnerWithoutOwnerLocks(t *testing.T) {
	t.Parallel()
	repo := &livenessRepo{JobRepository: memRepo(t), unsupported: true}
	r := newRunner(t, repo)
	r.Handle("k", noop)
	stop := start(t, r)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, stop())
	require.Zero(t, repo.checks.Load(), "no dead-owner checks where the repository cannot tell")
}

// A runner that cannot take its owner lock does not run: with its lock file
// left free, others would take its jobs for a dead process's.
func TestRunnerWithoutItsOwnerLockDoesNotRun(t *testing.T) {
	t.Parallel()
	refusal := &jobs.Error{Code: jobs.ErrConflict, Op: "hold owner", Msg: "held by a live process"}
	repo := &livenessRepo{JobRepository: memRepo(t), holdErr: refusal}
	r := newRunner(t, repo)
	r.Handle("k", noop)
	j, err := r.Enqueue(t.Context(), "k", nil)
	require.NoError(t, err)
	require.ErrorIs(t, r.Run(t.Context()), jobs.ErrConflict)
	require.Equal(t, jobs.StatusPending, get(t, r, j.ID).Status, "nothing was claimed")
	require.Zero(t, repo.checks.Load())
}

// A runner stopped while it takes its owner lock returns nil, as any runner
// stopped before its first claim does.
func TestRunnerStoppedWhileTakingItsOwnerLock(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	repo := &livenessRepo{JobRepository: memRepo(t), holdErr: &jobs.Error{Code: jobs.ErrUnavailable, Op: "hold owner", Err: context.Canceled}}
	r := newRunner(t, repo)
	r.Handle("k", noop)
	require.NoError(t, r.Run(ctx))
}
