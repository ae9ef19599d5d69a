package jobsbun_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
)

// TestFinishOfADependencyWakesThisProcess: a Finish that lets a waiting
// job go on tells this process's runners at once (on SQLite nothing else
// would until their next poll).
func TestFinishOfADependencyWakesThisProcess(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		a := newJob("a", 1)
		b := &jobs.Job{Kind: "b", After: []*jobs.Job{a}}
		require.NoError(t, repo.Create(ctx, a, b))
		claimed := claimAll(t, repo, 10)
		require.Len(t, claimed, 1, "b waits")
		ready := make(chan struct{}, 16)
		defer repo.Subscribe(func(ev jobs.Event) {
			if ev.Ready {
				ready <- struct{}{}
			}
		})()
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[0].Lease(), Status: jobs.StatusSucceeded}))
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("no Ready event after the dependency ended")
		}
		claimed = claimAll(t, repo, 10)
		require.Len(t, claimed, 1)
		require.Equal(t, b.ID, claimed[0].ID)
	})
}

// TestDependenciesEndingTogether: the 24 dependencies of a job are
// finished by 8 callers at once, each its own transaction; the job
// becomes pending exactly once, after the last, and is claimed once. On
// PostgreSQL the ends run concurrently and count down the dependent's
// row one after the other.
func TestDependenciesEndingTogether(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		for round := range 3 {
			parents := make([]*jobs.Job, 24)
			for i := range parents {
				parents[i] = newJob("p", i)
			}
			child := &jobs.Job{Kind: "c", After: parents}
			require.NoError(t, repo.Create(ctx, append(parents, child)...))
			claimed := claimAll(t, repo, len(parents))
			require.Len(t, claimed, len(parents))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					<-start
					for i := w; i < len(claimed); i += 8 {
						require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[i].Lease(), Status: jobs.StatusSucceeded}))
					}
				})
			}
			close(start)
			wg.Wait()
			got, err := repo.Get(ctx, child.ID)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusPending, got.Status, "round %d", round)
			again := claimAll(t, repo, 10)
			require.Len(t, again, 1)
			require.Equal(t, child.ID, again[0].ID)
			require.Empty(t, claimAll(t, repo, 10))
			require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: again[0].Lease(), Status: jobs.StatusSucceeded}))
		}
	})
}

// TestCreateRacesTheEndOfItsDependency: a job created with a dependency
// that is being finished at the same moment never waits for it forever:
// either the end sees the new job and lets it go on, or the new job sees
// the dependency ended.
func TestCreateRacesTheEndOfItsDependency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		for range 20 {
			p := newJob("p", 1)
			require.NoError(t, repo.Create(ctx, p))
			claimed := claimAll(t, repo, 1)
			require.Len(t, claimed, 1)
			c := &jobs.Job{Kind: "c", DependsOn: []uuid.UUID{p.ID}}
			start := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				<-start
				require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[0].Lease(), Status: jobs.StatusSucceeded}))
			})
			wg.Go(func() {
				<-start
				require.NoError(t, repo.Create(ctx, c))
			})
			close(start)
			wg.Wait()
			got, err := repo.Get(ctx, c.ID)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusPending, got.Status)
			again := claimAll(t, repo, 10)
			require.Len(t, again, 1)
			require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: again[0].Lease(), Status: jobs.StatusSucceeded}))
		}
	})
}

// TestBatchOnBothBackends walks a batch without a callback through
// progress, an end and a failure, and a second batch through a cancel.
func TestBatchOnBothBackends(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		a, b, c := newJob("a", 1), newJob("b", 2), newJob("c", 3)
		batch := &jobs.Job{Kind: jobs.BatchKind, Batch: true, After: []*jobs.Job{a, b, c}}
		require.NoError(t, repo.Create(ctx, a, b, c, batch))
		require.Equal(t, jobs.StatusWaiting, batch.Status)
		require.True(t, batch.RunAnyway)
		claimed := claimAll(t, repo, 10)
		require.Len(t, claimed, 3)
		progress := func() float64 {
			got, err := repo.Get(ctx, batch.ID)
			require.NoError(t, err)
			return got.Progress.Fraction
		}
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: claimed[0].Lease(), Progress: jobs.Progress{Fraction: 0.6}}))
		require.InDelta(t, 0.2, progress(), 1e-9)
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[0].Lease(), Status: jobs.StatusSucceeded}))
		require.InDelta(t, 1.0/3, progress(), 1e-9)
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[1].Lease(), Status: jobs.StatusFailed, Error: "no"}))
		require.InDelta(t, 2.0/3, progress(), 1e-9)
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[2].Lease(), Status: jobs.StatusSucceeded}))
		got, err := repo.Get(ctx, batch.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusFailed, got.Status)
		require.Equal(t, "1 of 3 jobs did not succeed", got.Error)
		require.InDelta(t, 1.0, got.Progress.Fraction, 1e-9)

		d, e, f := newJob("d", 1), newJob("e", 2), newJob("f", 3)
		require.NoError(t, repo.Create(ctx, d, e))
		running := claimAll(t, repo, 10)
		require.Len(t, running, 2)
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: running[1].Lease(), Status: jobs.StatusSucceeded}))
		require.NoError(t, repo.Create(ctx, f))
		cb := &jobs.Job{Kind: "report", Batch: true, DependsOn: []uuid.UUID{d.ID, e.ID, f.ID}}
		require.NoError(t, repo.Create(ctx, cb))
		require.InDelta(t, 1.0/3, cb.Progress.Fraction, 1e-9)
		other := &jobs.Job{Kind: "x", Batch: true, DependsOn: []uuid.UUID{d.ID}}
		require.ErrorIs(t, repo.Create(ctx, other), jobs.ErrInvalidArgument)
		_, err = repo.RequestCancel(ctx, cb.ID)
		require.NoError(t, err)
		for id, want := range map[uuid.UUID]jobs.Status{running[0].ID: jobs.StatusRunning, running[1].ID: jobs.StatusSucceeded, f.ID: jobs.StatusCanceled, cb.ID: jobs.StatusCanceled} {
			got, err := repo.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, want, got.Status)
			if want == jobs.StatusRunning {
				require.True(t, got.CancelRequested)
			}
		}
	})
}

// TestLongChainCancelsInOneWrite: canceling the first job of a chain of
// 3 000 cancels all the others in the same write. On PostgreSQL a trigger
// that fired again for each job it canceled would pass the stack's limit
// ("stack depth limit exceeded") and fail the cancel. (300 on SQLite under
// the race detector, where 3 000 would take the CPU from the other tests.)
func TestLongChainCancelsInOneWrite(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		n := 3000
		if raceEnabled && repo.DB().Dialect().Name().String() != "pg" {
			n = 300
		}
		js := make([]*jobs.Job, n)
		for i := range js {
			js[i] = newJob("c", i)
			if i > 0 {
				js[i].After = []*jobs.Job{js[i-1]}
			}
		}
		require.NoError(t, repo.Create(ctx, js...))
		_, err := repo.RequestCancel(ctx, js[0].ID)
		require.NoError(t, err)
		last, err := repo.Get(ctx, js[len(js)-1].ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, last.Status)
		require.Equal(t, "dependency "+js[len(js)-2].ID.String()+" canceled", last.Error)
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, len(js), st.ByStatus[jobs.StatusCanceled])
	})
}
