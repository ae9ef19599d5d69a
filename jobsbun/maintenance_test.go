package jobsbun_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

func TestBunReleaseAndCancel(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		a, b, c := newJob("k", 1), newJob("k", 2), newJob("k", 3)
		require.NoError(t, repo.Create(ctx, a, b, c))
		p, err := repo.RequestCancel(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, p.Status)
		require.False(t, p.FinishedAt.IsZero())
		_, err = repo.RequestCancel(ctx, c.ID)
		require.ErrorIs(t, err, jobs.ErrConflict)

		cl := claimAll(t, repo, 2)
		require.Len(t, cl, 2)
		ids, err := repo.CancelRequests(ctx, "w1")
		require.NoError(t, err)
		require.Empty(t, ids)
		r1, err := repo.RequestCancel(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusRunning, r1.Status)
		require.True(t, r1.CancelRequested)
		r2, err := repo.RequestCancel(ctx, b.ID)
		require.NoError(t, err)
		require.True(t, r1.UpdatedAt.Equal(r2.UpdatedAt), "second request is a no-op")
		ids, err = repo.CancelRequests(ctx, "w1")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{b.ID}, ids)
		ids, err = repo.CancelRequests(ctx, "other")
		require.NoError(t, err)
		require.Empty(t, ids)

		err = repo.Release(ctx, cl[0].Lease(), cl[1].Lease())
		require.ErrorIs(t, err, jobs.ErrCanceled, "b had a cancel request: released as canceled")
		require.NotErrorIs(t, err, jobs.ErrLeaseLost)
		ga, gb := mustGet(t, repo, a.ID), mustGet(t, repo, b.ID)
		require.Equal(t, jobs.StatusPending, ga.Status)
		require.Equal(t, 0, ga.Attempt, "release does not count the attempt")
		require.Empty(t, ga.LeaseToken)
		require.Equal(t, jobs.StatusCanceled, gb.Status)
		require.False(t, gb.FinishedAt.IsZero())
		require.ErrorIs(t, repo.Release(ctx, cl[0].Lease()), jobs.ErrLeaseLost)
		require.Len(t, claimAll(t, repo, 5), 1, "released job is claimable at once")
	})
}

func TestBunRescueExpired(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		const n = 40
		var js []*jobs.Job
		for i := range n {
			j := newJob("k", i)
			j.MaxAttempts = 1 + i%2
			js = append(js, j)
		}
		live := newJob("k", "live")
		require.NoError(t, repo.Create(ctx, js...))
		cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: n, LeaseDuration: time.Millisecond})
		require.NoError(t, err)
		require.Len(t, cl, n)
		require.NoError(t, repo.Create(ctx, live))
		_, err = repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Hour})
		require.NoError(t, err)
		require.NoError(t, repo.Heartbeat(ctx, time.Millisecond, cl[0].Lease()))
		// Every lease has run out once the renewed one, the latest, has.
		renewed := mustGet(t, repo, cl[0].ID).LeaseExpiresAt
		require.True(t, renewed.After(cl[0].LeaseExpiresAt), "the heartbeat renewed the lease")
		require.Eventually(t, func() bool {
			return time.Since(renewed) > 50*time.Millisecond
		}, 5*time.Second, 5*time.Millisecond)

		var mu sync.Mutex
		seen := map[uuid.UUID]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					got, err := repo.RescueExpired(ctx, 7)
					if !assertNoError(t, err) || len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						seen[j.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, seen, n, "every expired lease rescued, the live one not")
		for id, c := range seen {
			require.Equal(t, 1, c, id)
		}
		for _, j := range js {
			g := mustGet(t, repo, j.ID)
			want := jobs.StatusPending
			if j.MaxAttempts == 1 {
				want = jobs.StatusFailed
			}
			require.Equal(t, want, g.Status)
			require.Equal(t, "lease expired", g.Error)
			require.Empty(t, g.LeaseToken)
		}
		require.ErrorIs(t, repo.Heartbeat(ctx, time.Minute, cl[0].Lease()), jobs.ErrLeaseLost)
		_, err = repo.RescueExpired(ctx, 0)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	})
}

func TestBunPrune(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		var js []*jobs.Job
		for i := range 25 {
			js = append(js, newJob("k", i))
		}
		require.NoError(t, repo.Create(ctx, js...))
		cl := claimAll(t, repo, 20)
		var cs []jobs.Completion
		for _, j := range cl {
			cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
		}
		require.NoError(t, repo.Finish(ctx, cs...))
		n, err := repo.Prune(ctx, time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = repo.Prune(ctx, time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 20, n)
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 5, st.Total)
	})
}
