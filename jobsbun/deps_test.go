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
