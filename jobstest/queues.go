package jobstest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// queuesCases check Queues, and that it and Stats stay exact through every
// write that moves a job into or out of a status, one at a time and
// concurrently (an implementation may keep its counts as jobs change
// rather than count them at each call).
var queuesCases = []testCase{
	{"Empty", func(t *testing.T, h *harness) {
		qs, err := h.repo.Queues(t.Context())
		require.NoError(t, err)
		require.NotNil(t, qs)
		require.Empty(t, qs)
	}},
	{"CountsReadyAndLatency", func(t *testing.T, h *harness) {
		waited := time.Now().Add(-time.Hour)
		h.create(t,
			&jobs.Job{Kind: "a", Queue: "q1", RunAt: waited},
			&jobs.Job{Kind: "b", Queue: "q1", RunAt: time.Now().Add(-time.Minute)},
			&jobs.Job{Kind: "a", Queue: "q1", RunAt: time.Now().Add(time.Hour)},
			&jobs.Job{Kind: "a", Queue: "q2"}, &jobs.Job{Kind: "a", Queue: "q2"})
		run := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Queues: []string{"q2"}, Limit: 2, LeaseDuration: hour})
		require.Len(t, run, 2)
		h.finish(t, run[0], jobs.StatusFailed)
		require.NoError(t, h.repo.PauseQueue(t.Context(), "idle"))
		require.NoError(t, h.repo.PauseQueue(t.Context(), "q1"))
		begin := time.Now()
		qs, err := h.repo.Queues(t.Context())
		require.NoError(t, err)
		require.Len(t, qs, 3)
		require.Equal(t, jobs.QueueStats{Name: "idle", Paused: true, Counts: map[jobs.Status]int{}}, qs[0])
		q1 := qs[1]
		require.Equal(t, "q1", q1.Name)
		require.True(t, q1.Paused)
		require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 3}, nonZero(q1.Counts))
		require.Equal(t, 2, q1.Ready)
		// The latency is that of the job ready the longest, as of the call.
		require.GreaterOrEqual(t, q1.Latency, begin.Sub(waited)-time.Second)
		require.LessOrEqual(t, q1.Latency, time.Since(waited)+time.Second)
		require.Equal(t, jobs.QueueStats{Name: "q2", Counts: map[jobs.Status]int{jobs.StatusRunning: 1, jobs.StatusFailed: 1}},
			jobs.QueueStats{Name: qs[2].Name, Paused: qs[2].Paused, Counts: nonZero(qs[2].Counts), Ready: qs[2].Ready, Latency: qs[2].Latency})
	}},
	{"FollowEveryTransition", func(t *testing.T, h *harness) {
		// Each step changes the counts in its own way; after each, Queues
		// and Stats must agree with a count of the jobs themselves.
		ctx := t.Context()
		for _, q := range []string{"q1", "q2"} {
			for _, k := range []string{"a", "b"} {
				h.create(t, &jobs.Job{Kind: k, Queue: q, MaxAttempts: 2}, &jobs.Job{Kind: k, Queue: q, MaxAttempts: 2})
			}
		}
		requireCountsExact(t, h)
		run := h.claim(t, 5)
		requireCountsExact(t, h)
		h.finish(t, run[0], jobs.StatusSucceeded)
		h.finish(t, run[1], jobs.StatusFailed)
		require.NoError(t, h.repo.Finish(ctx, jobs.Completion{Lease: run[2].Lease(), Status: jobs.StatusPending, RunAt: time.Now()}))
		requireCountsExact(t, h)
		_, err := h.repo.RequestCancel(ctx, run[3].ID)
		require.NoError(t, err)
		requireCanceledInstead(t, h.repo.Finish(ctx, jobs.Completion{Lease: run[3].Lease(), Status: jobs.StatusSucceeded}), run[3].ID)
		require.NoError(t, h.repo.Release(ctx, run[4].Lease()))
		requireCountsExact(t, h)
		pending := h.list(t, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending}, Limit: 1})
		_, err = h.repo.RequestCancel(ctx, pending[0].ID)
		require.NoError(t, err)
		requireCountsExact(t, h)
		expired := h.claimQ(t, jobs.ClaimQuery{Owner: "old", Limit: 2, LeaseDuration: time.Millisecond})
		waitExpired(t, expired...)
		_, err = h.repo.RescueExpired(ctx, 10)
		require.NoError(t, err)
		requireCountsExact(t, h)
		n, err := h.repo.Prune(ctx, time.Now().Add(time.Hour))
		require.NoError(t, err)
		require.Positive(t, n)
		requireCountsExact(t, h)
		// A queue whose jobs are all pruned is gone.
		for {
			js := h.claim(t, 100)
			if len(js) == 0 {
				break
			}
			for _, j := range js {
				h.finish(t, j, jobs.StatusSucceeded)
			}
		}
		_, err = h.repo.Prune(ctx, time.Now().Add(time.Hour))
		require.NoError(t, err)
		qs, err := h.repo.Queues(ctx)
		require.NoError(t, err)
		require.Empty(t, qs)
		requireCountsExact(t, h)
	}},
	{"ExactUnderConcurrency", func(t *testing.T, h *harness) {
		// Workers finish, retry and release, cancellers cancel pending and
		// running jobs (or find them pruned), a rescuer rescues and a pruner
		// prunes, all at once;
		// then the counts must match a count of the jobs.
		ctx := t.Context()
		total := max(h.cfg.stressJobs/10, 100)
		var mk []*jobs.Job
		for i := range total {
			mk = append(mk, &jobs.Job{Kind: []string{"a", "b", "c"}[i%3], Queue: []string{"q1", "q2"}[i%2], MaxAttempts: 2})
		}
		created := h.create(t, mk...)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 4 {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), 7))
				for {
					lease := hour
					if w == 3 {
						lease = time.Millisecond // the rescuer's prey
					}
					js, err := h.repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 5, LeaseDuration: lease})
					if err != nil {
						errs <- err
						return
					}
					if len(js) == 0 {
						return
					}
					if w == 3 {
						continue
					}
					cs := make([]jobs.Completion, 0, len(js))
					for _, j := range js {
						switch rnd.IntN(5) {
						case 0:
							cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusFailed, Error: "x"})
						case 1:
							cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusPending, RunAt: time.Now()})
						case 2:
							if err := h.repo.Release(ctx, j.Lease()); err != nil && !isCode(err, jobs.ErrLeaseLost, jobs.ErrCanceled) {
								errs <- err
							}
						default:
							cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
						}
					}
					if err := h.repo.Finish(ctx, cs...); err != nil && !isCode(err, jobs.ErrLeaseLost, jobs.ErrCanceled) {
						errs <- err
					}
				}
			})
		}
		wg.Go(func() {
			for i := 0; i < len(created); i += 3 {
				if _, err := h.repo.RequestCancel(ctx, created[i].ID); err != nil && !isCode(err, jobs.ErrConflict, jobs.ErrNotFound) {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			for range 20 {
				if _, err := h.repo.RescueExpired(ctx, 50); err != nil {
					errs <- err
				}
				if _, err := h.repo.Prune(ctx, time.Now()); err != nil {
					errs <- err
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		requireCountsExact(t, h)
	}},
}

// requireCountsExact compares Queues and Stats with a count of every job,
// read with List.
func requireCountsExact(t *testing.T, h *harness) {
	t.Helper()
	want := &jobs.Stats{}
	byQueue := map[string]map[jobs.Status]int{}
	ready := map[string]int{}
	now := time.Now()
	for cursor := ""; ; {
		p, err := h.repo.List(t.Context(), jobs.ListQuery{Limit: rules.MaxListLimit, Cursor: cursor})
		require.NoError(t, err)
		for _, j := range p.Jobs {
			want.Add(j.Queue, j.Kind, j.Status, 1)
			if byQueue[j.Queue] == nil {
				byQueue[j.Queue] = map[jobs.Status]int{}
			}
			byQueue[j.Queue][j.Status]++
			if j.Status == jobs.StatusPending && !j.RunAt.After(now) {
				ready[j.Queue]++
			}
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	st := h.stats(t)
	require.Equal(t, want.Total, st.Total)
	require.Equal(t, nonZero(want.ByStatus), nonZero(st.ByStatus))
	for k, m := range want.ByKind {
		require.Equal(t, m, nonZero(st.ByKind[k]), "kind %s", k)
	}
	for q, m := range want.ByQueue {
		require.Equal(t, m, nonZero(st.ByQueue[q]), "queue %s", q)
	}
	qs, err := h.repo.Queues(t.Context())
	require.NoError(t, err)
	got := map[string]map[jobs.Status]int{}
	for _, q := range qs {
		got[q.Name] = nonZero(q.Counts)
		require.Equal(t, ready[q.Name], q.Ready, "queue %s", q.Name)
	}
	require.Equal(t, byQueue, got)
}

// list returns the first page of q.
func (h *harness) list(t *testing.T, q jobs.ListQuery) []*jobs.Job {
	t.Helper()
	p, err := h.repo.List(t.Context(), q)
	require.NoError(t, err)
	return p.Jobs
}

// isCode reports whether err, and each error it joins, matches one of the
// sentinels.
func isCode(err error, sentinels ...error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !isCode(e, sentinels...) {
				return false
			}
		}
		return true
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
