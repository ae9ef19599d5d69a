package jobstest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

var claimCases = []testCase{
	{"SetsLease", func(t *testing.T, h *harness) {
		j := h.create(t, job("k"))[0]
		before := time.Now()
		got := h.claimQ(t, jobs.ClaimQuery{Owner: "worker-7", Limit: 5, LeaseDuration: 90 * time.Second})
		after := time.Now()
		require.Len(t, got, 1)
		c := got[0]
		require.Equal(t, j.ID, c.ID)
		require.Equal(t, jobs.StatusRunning, c.Status)
		require.Equal(t, 1, c.Attempt)
		require.Equal(t, "worker-7", c.LeaseOwner)
		require.NotEmpty(t, c.LeaseToken)
		requireWithin(t, c.LeaseExpiresAt, before.Add(90*time.Second), after.Add(90*time.Second), "LeaseExpiresAt")
		requireWithin(t, c.StartedAt, before, after, "StartedAt")
		requireWithin(t, c.UpdatedAt, before, after, "UpdatedAt")
		require.True(t, c.FinishedAt.IsZero())
		require.JSONEq(t, string(j.Payload), string(c.Payload), "claimed jobs carry their payload")
		require.Equal(t, j.Kind, c.Kind)
		requireUTC(t, c)
		requireSame(t, c, h.get(t, j.ID))
	}},
	{"EmptyWhenNothingReady", func(t *testing.T, h *harness) {
		got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: hour})
		require.NoError(t, err)
		require.Empty(t, got)
	}},
	{"NotTwice", func(t *testing.T, h *harness) {
		h.createN(t, "k", 5)
		first := h.claim(t, 10)
		require.Len(t, first, 5)
		require.Empty(t, h.claim(t, 10), "claimed jobs are not claimed again")
		tokens := map[string]bool{}
		for _, j := range first {
			require.False(t, tokens[j.LeaseToken], "each claimed job has its own token")
			tokens[j.LeaseToken] = true
		}
	}},
	{"Limit", func(t *testing.T, h *harness) {
		h.createN(t, "k", 10)
		require.Len(t, h.claim(t, 3), 3)
		require.Len(t, h.claim(t, 5), 5)
		require.Len(t, h.claim(t, 5), 2)
		st := h.stats(t)
		require.Equal(t, 10, st.ByStatus[jobs.StatusRunning])
		require.Zero(t, st.ByStatus[jobs.StatusPending])
	}},
	{"MaxLimit", func(t *testing.T, h *harness) {
		h.createN(t, "k", rules.MaxClaimLimit+5)
		require.Len(t, h.claim(t, rules.MaxClaimLimit), rules.MaxClaimLimit)
		require.Len(t, h.claim(t, rules.MaxClaimLimit), 5)
	}},
	{"RespectsRunAt", func(t *testing.T, h *harness) {
		future := &jobs.Job{Kind: "k", RunAt: time.Now().Add(time.Hour)}
		past := &jobs.Job{Kind: "k", RunAt: time.Now().Add(-time.Hour)}
		h.create(t, future, past)
		got := h.claim(t, 10)
		require.Equal(t, []uuid.UUID{past.ID}, ids(got), "only jobs whose RunAt has come are claimed")
		require.Equal(t, jobs.StatusPending, h.get(t, future.ID).Status)
	}},
	{"RunAtComes", func(t *testing.T, h *harness) {
		runAt := time.Now().Add(200 * time.Millisecond)
		soon := h.create(t, &jobs.Job{Kind: "k", RunAt: runAt})[0]
		got := h.claim(t, 1)
		if time.Now().Before(runAt) { // on a loaded machine the claim may come late
			require.Empty(t, got, "claimed before its RunAt")
		}
		if len(got) == 0 {
			require.Eventually(t, func() bool { return len(h.claim(t, 1)) == 1 }, 10*time.Second, 5*time.Millisecond)
		}
		require.Equal(t, jobs.StatusRunning, h.get(t, soon.ID).Status)
	}},
	{"PriorityThenRunAt", func(t *testing.T, h *harness) {
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
		mk := func(prio int, ago time.Duration) *jobs.Job {
			return &jobs.Job{Kind: "k", Priority: prio, RunAt: base.Add(-ago)}
		}
		js := []*jobs.Job{
			mk(0, 1*time.Minute), mk(5, 0), mk(-1, 10*time.Minute), mk(10, 0),
			mk(0, 3*time.Minute), mk(5, 2*time.Minute), mk(0, 2*time.Minute),
		}
		h.create(t, js...)
		want := []uuid.UUID{js[3].ID, js[5].ID, js[1].ID, js[4].ID, js[6].ID, js[0].ID, js[2].ID}
		var got []uuid.UUID
		for range js {
			got = append(got, h.claimOne(t).ID)
		}
		require.Equal(t, want, got, "higher priority first, then older RunAt")
	}},
	{"BatchTakesTheBest", func(t *testing.T, h *harness) {
		low := h.createN(t, "k", 5)
		high := make([]*jobs.Job, 3)
		for i := range high {
			high[i] = &jobs.Job{Kind: "k", Priority: 1}
		}
		h.create(t, high...)
		require.ElementsMatch(t, ids(high), ids(h.claim(t, 3)))
		require.Len(t, low, 5)
	}},
	{"QueueAndKindFilters", func(t *testing.T, h *harness) {
		mk := func(q, k string) *jobs.Job { return &jobs.Job{Kind: k, Queue: q} }
		a1, a2, b1, b2, d1 := mk("a", "k1"), mk("a", "k2"), mk("b", "k1"), mk("b", "k2"), mk("", "k1")
		h.create(t, a1, a2, b1, b2, d1)
		q := func(queues, kinds []string) jobs.ClaimQuery {
			return jobs.ClaimQuery{Owner: "w", Queues: queues, Kinds: kinds, Limit: 10, LeaseDuration: hour}
		}
		require.Equal(t, []uuid.UUID{a2.ID}, ids(h.claimQ(t, q([]string{"a"}, []string{"k2"}))))
		require.Equal(t, []uuid.UUID{a1.ID}, ids(h.claimQ(t, q([]string{"a", "nope"}, nil))))
		require.Equal(t, []uuid.UUID{d1.ID}, ids(h.claimQ(t, q([]string{rules.DefaultQueue}, nil))))
		require.Empty(t, h.claimQ(t, q([]string{"nope"}, nil)))
		require.Empty(t, h.claimQ(t, q(nil, []string{"nope"})))
		require.Equal(t, []uuid.UUID{b1.ID}, ids(h.claimQ(t, q(nil, []string{"k1"}))))
		require.Equal(t, []uuid.UUID{b2.ID}, ids(h.claimQ(t, q(nil, nil))))
	}},
	{"ConcurrentClaimers", func(t *testing.T, h *harness) {
		n := h.cfg.stressJobs
		for i := 0; i < n; i += 1000 {
			h.createN(t, "k", min(1000, n-i))
		}
		const claimers = 16
		var (
			mu   sync.Mutex
			seen = map[uuid.UUID]string{}
			errs []error
			wg   sync.WaitGroup
		)
		for w := range claimers {
			wg.Go(func() {
				owner := "w" + string(rune('a'+w))
				for {
					got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: owner, Limit: 10, LeaseDuration: hour})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, j := range got {
						if prev, dup := seen[j.ID]; dup {
							errs = append(errs, fmt.Errorf("job %s claimed by %s and %s", j.ID, prev, owner))
						}
						seen[j.ID] = owner
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
		require.Len(t, seen, n, "every job is claimed exactly once")
		require.Equal(t, n, h.stats(t).ByStatus[jobs.StatusRunning])
	}},
}
