package jobstest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// claimExpiring creates n jobs and claims them with a lease that expires at
// once, then waits until it has.
func (h *harness) claimExpiring(t *testing.T, n int, mk func() *jobs.Job) []*jobs.Job {
	t.Helper()
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = mk()
	}
	h.create(t, js...)
	claimed := h.claimQ(t, jobs.ClaimQuery{Owner: "old", Limit: n, LeaseDuration: time.Millisecond})
	require.Len(t, claimed, n)
	waitExpired(t, claimed...)
	return claimed
}

var fencingCases = []testCase{
	{"RescuedLeaseIsLost", func(t *testing.T, h *harness) {
		old := h.claimExpiring(t, 1, func() *jobs.Job { return job("k") })[0]
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{old.ID}, ids(rescued))
		after := h.get(t, old.ID)
		requireSame(t, rescued[0], after)
		ctx, l := t.Context(), old.Lease()
		requireLost(t, h.repo.UpdateProgress(ctx, hour, jobs.ProgressUpdate{Lease: l, Progress: jobs.Progress{Fraction: 0.9}}), old.ID)
		requireLost(t, h.repo.Heartbeat(ctx, hour, l), old.ID)
		requireLost(t, h.repo.Finish(ctx, jobs.Completion{Lease: l, Status: jobs.StatusSucceeded}), old.ID)
		requireLost(t, h.repo.Release(ctx, l), old.ID)
		requireSame(t, after, h.get(t, old.ID))

		fresh := h.claimOne(t)
		require.Equal(t, old.ID, fresh.ID)
		require.NotEqual(t, old.LeaseToken, fresh.LeaseToken)
		require.Equal(t, 2, fresh.Attempt)
		requireLost(t, h.repo.Finish(ctx, jobs.Completion{Lease: l, Status: jobs.StatusFailed}), old.ID)
		require.NoError(t, h.repo.Heartbeat(ctx, hour, fresh.Lease()), "the new lease works")
		h.finish(t, fresh, jobs.StatusSucceeded)
		require.Equal(t, jobs.StatusSucceeded, h.get(t, old.ID).Status)
	}},
	{"ExpiredButNotRescuedStillWorks", func(t *testing.T, h *harness) {
		// Expiry alone does not fence: only a rescue (or another change)
		// takes the job away, so a late heartbeat may still save it.
		j := h.claimExpiring(t, 1, func() *jobs.Job { return job("k") })[0]
		require.NoError(t, h.repo.Heartbeat(t.Context(), hour, j.Lease()))
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Empty(t, rescued, "a renewed lease is not expired")
	}},
	{"BatchHeartbeatWithLostLease", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		js := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Limit: 3, LeaseDuration: time.Minute})
		require.Len(t, js, 3)
		h.finish(t, js[2], jobs.StatusSucceeded)
		err := h.repo.Heartbeat(t.Context(), hour, js[0].Lease(), js[1].Lease(), js[2].Lease())
		requireLost(t, err, js[2].ID)
		for _, j := range js[:2] {
			require.True(t, h.get(t, j.ID).LeaseExpiresAt.After(j.LeaseExpiresAt.Add(30*time.Minute)), "the others are renewed")
		}
	}},
	{"HeartbeatRenews", func(t *testing.T, h *harness) {
		h.create(t, job("k"))
		j := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Minute})[0]
		before := time.Now()
		require.NoError(t, h.repo.Heartbeat(t.Context(), hour, j.Lease()))
		after := time.Now()
		got := h.get(t, j.ID)
		requireWithin(t, got.LeaseExpiresAt, before.Add(hour), after.Add(hour), "LeaseExpiresAt")
		require.Equal(t, j.LeaseToken, got.LeaseToken, "a heartbeat keeps the token")
		require.Equal(t, j.Progress, got.Progress)
		require.Equal(t, jobs.StatusRunning, got.Status)
	}},
}

var progressCases = []testCase{
	{"StoredAndRenewsLease", func(t *testing.T, h *harness) {
		h.create(t, job("k"))
		j := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Minute})[0]
		p := jobs.Progress{Fraction: 0.3, Message: "segment 3/10"}
		before := time.Now()
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: p}))
		after := time.Now()
		got := h.get(t, j.ID)
		require.Equal(t, p, got.Progress)
		requireWithin(t, got.LeaseExpiresAt, before.Add(hour), after.Add(hour), "LeaseExpiresAt")
		require.Equal(t, jobs.StatusRunning, got.Status)
		require.Equal(t, j.LeaseToken, got.LeaseToken)
	}},
	{"StaleAndCurrentLeaseOfOneJob", func(t *testing.T, h *harness) {
		for _, staleFirst := range []bool{true, false} {
			stale, current := h.reclaimed(t)
			ups := []jobs.ProgressUpdate{
				{Lease: stale.Lease(), Progress: jobs.Progress{Fraction: 0.9, Message: "stale"}},
				{Lease: current.Lease(), Progress: jobs.Progress{Fraction: 0.1, Message: "current"}},
			}
			if !staleFirst {
				ups[0], ups[1] = ups[1], ups[0]
			}
			requireLost(t, h.repo.UpdateProgress(t.Context(), hour, ups...), stale.ID)
			require.Equal(t, "current", h.get(t, current.ID).Progress.Message, "stale first: %v", staleFirst)
			requireLost(t, h.repo.Heartbeat(t.Context(), 2*hour, current.Lease(), stale.Lease()), stale.ID)
			require.True(t, h.get(t, current.ID).LeaseExpiresAt.After(time.Now().Add(hour+time.Minute)), "the current lease is renewed")
			h.finish(t, current, jobs.StatusSucceeded)
		}
	}},
	{"MayDecrease", func(t *testing.T, h *harness) {
		// The repository stores what it is given; smoothing is the runner's job.
		j := h.running(t)
		for _, f := range []float64{0.8, 0.2} {
			require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: jobs.Progress{Fraction: f}}))
			require.Equal(t, f, h.get(t, j.ID).Progress.Fraction)
		}
	}},
	{"BatchWithLostLease", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		js := h.claim(t, 3)
		require.Len(t, js, 3)
		require.NoError(t, h.repo.Release(t.Context(), js[0].Lease()))
		released := h.get(t, js[0].ID)
		ups := make([]jobs.ProgressUpdate, len(js))
		for i, j := range js {
			ups[i] = jobs.ProgressUpdate{Lease: j.Lease(), Progress: jobs.Progress{Fraction: 0.5, Message: "half"}}
		}
		requireLost(t, h.repo.UpdateProgress(t.Context(), hour, ups...), js[0].ID)
		requireSame(t, released, h.get(t, js[0].ID))
		for _, j := range js[1:] {
			require.Equal(t, jobs.Progress{Fraction: 0.5, Message: "half"}, h.get(t, j.ID).Progress)
		}
	}},
}

var releaseCases = []testCase{
	{"BackToPending", func(t *testing.T, h *harness) {
		j := h.running(t)
		require.NoError(t, h.repo.Release(t.Context(), j.Lease()))
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.Zero(t, got.Attempt, "a released attempt is not counted")
		require.Empty(t, got.LeaseOwner)
		require.Empty(t, got.LeaseToken)
		require.True(t, got.LeaseExpiresAt.IsZero())
		require.True(t, got.FinishedAt.IsZero())
		require.Empty(t, got.Errors)
		again := h.claimOne(t)
		require.Equal(t, j.ID, again.ID, "a released job is claimable at once")
		require.Equal(t, 1, again.Attempt)
		requireLost(t, h.repo.Release(t.Context(), j.Lease()), j.ID)
	}},
	{"KeepsItsPlace", func(t *testing.T, h *harness) {
		first := h.create(t, &jobs.Job{Kind: "k", RunAt: time.Now().Add(-time.Hour)})[0]
		h.createN(t, "k", 3)
		c := h.claimOne(t)
		require.Equal(t, first.ID, c.ID)
		require.NoError(t, h.repo.Release(t.Context(), c.Lease()))
		require.Equal(t, first.ID, h.claimOne(t).ID, "a released job keeps its RunAt and its place")
	}},
	{"CancelRequestedBecomesCanceled", func(t *testing.T, h *harness) {
		j := h.running(t)
		_, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		other := h.running(t)
		requireCanceledInstead(t, h.repo.Release(t.Context(), j.Lease(), other.Lease()), j.ID)
		require.Equal(t, jobs.StatusPending, h.get(t, other.ID).Status, "the others are released as asked")
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		require.Zero(t, got.Attempt)
		require.False(t, got.FinishedAt.IsZero())
		require.Empty(t, got.LeaseToken)
	}},
	{"BatchWithLostLease", func(t *testing.T, h *harness) {
		h.createN(t, "k", 2)
		js := h.claim(t, 2)
		require.Len(t, js, 2)
		h.finish(t, js[1], jobs.StatusFailed)
		requireLost(t, h.repo.Release(t.Context(), js[0].Lease(), js[1].Lease()), js[1].ID)
		require.Equal(t, jobs.StatusPending, h.get(t, js[0].ID).Status)
		require.Equal(t, jobs.StatusFailed, h.get(t, js[1].ID).Status)
	}},
}

var rescueCases = []testCase{
	{"ExpiredToPending", func(t *testing.T, h *harness) {
		old := h.claimExpiring(t, 1, func() *jobs.Job { return job("k") })[0]
		h.create(t, job("not-running"))
		h.claimQ(t, jobs.ClaimQuery{Owner: "live", Limit: 10, LeaseDuration: hour})
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1, "only expired leases are rescued")
		r := rescued[0]
		require.Equal(t, old.ID, r.ID)
		require.Equal(t, jobs.StatusPending, r.Status)
		require.Equal(t, 1, r.Attempt, "the attempt stays counted")
		require.Equal(t, "lease expired", r.Error, "the lost attempt is recorded")
		require.Len(t, r.Errors, 1)
		require.Equal(t, 1, r.Errors[0].Attempt)
		require.Equal(t, "lease expired", r.Errors[0].Error)
		require.Empty(t, r.LeaseOwner)
		require.Empty(t, r.LeaseToken)
		require.True(t, r.LeaseExpiresAt.IsZero())
		requireUTC(t, r)
		requireSame(t, r, h.get(t, old.ID))
		again, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Empty(t, again, "a lease is rescued once")
		require.Equal(t, old.ID, h.claimOne(t).ID)
	}},
	{"AttemptsExhaustedFails", func(t *testing.T, h *harness) {
		old := h.claimExpiring(t, 1, func() *jobs.Job { return &jobs.Job{Kind: "k", MaxAttempts: 1} })[0]
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1)
		require.Equal(t, jobs.StatusFailed, rescued[0].Status)
		require.False(t, rescued[0].FinishedAt.IsZero())
		requireSame(t, rescued[0], h.get(t, old.ID))
		require.Empty(t, h.claim(t, 10))
	}},
	{"CancelRequestedCancels", func(t *testing.T, h *harness) {
		old := h.claimExpiring(t, 1, func() *jobs.Job { return job("k") })[0]
		_, err := h.repo.RequestCancel(t.Context(), old.ID)
		require.NoError(t, err)
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1)
		require.Equal(t, jobs.StatusCanceled, rescued[0].Status)
		require.False(t, rescued[0].FinishedAt.IsZero())
	}},
	{"Limit", func(t *testing.T, h *harness) {
		h.claimExpiring(t, 5, func() *jobs.Job { return job("k") })
		first, err := h.repo.RescueExpired(t.Context(), 3)
		require.NoError(t, err)
		require.Len(t, first, 3)
		rest, err := h.repo.RescueExpired(t.Context(), 3)
		require.NoError(t, err)
		require.Len(t, rest, 2)
	}},
	{"ConcurrentRescuers", func(t *testing.T, h *harness) {
		const n = 60
		h.claimExpiring(t, n, func() *jobs.Job { return job("k") })
		var (
			mu    sync.Mutex
			seen  = map[uuid.UUID]int{}
			errs  []error
			wg    sync.WaitGroup
			total int
		)
		for range 4 {
			wg.Go(func() {
				for {
					got, err := h.repo.RescueExpired(t.Context(), 7)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, j := range got {
						seen[j.ID]++
						total++
					}
					mu.Unlock()
					if err != nil || len(got) == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		require.Empty(t, errs)
		require.Equal(t, n, total, "each expired lease is rescued exactly once")
		require.Len(t, seen, n)
		for id := range seen {
			require.Equal(t, 1, h.get(t, id).Attempt)
		}
	}},
}
