package jobstest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// reversed returns the IDs of js, last first.
func reversed(js []*jobs.Job) []uuid.UUID {
	out := ids(js)
	slices.Reverse(out)
	return out
}

var listCases = []testCase{
	{"Empty", func(t *testing.T, h *harness) {
		p, err := h.repo.List(t.Context(), jobs.ListQuery{})
		require.NoError(t, err)
		require.Empty(t, p.Jobs)
		require.Empty(t, p.Next)
	}},
	{"NewestFirst", func(t *testing.T, h *harness) {
		var js []*jobs.Job
		for range 5 {
			js = append(js, h.create(t, job("k"))...)
		}
		js = append(js, h.createN(t, "k", 5)...)
		p, err := h.repo.List(t.Context(), jobs.ListQuery{})
		require.NoError(t, err)
		require.Equal(t, reversed(js), ids(p.Jobs))
		require.Empty(t, p.Next)
		for _, j := range p.Jobs {
			requireUTC(t, j)
		}
		requireSame(t, js[9], p.Jobs[0])
	}},
	{"Filters", func(t *testing.T, h *harness) {
		a := h.create(t, &jobs.Job{Kind: "ka", Queue: "qa"})[0]
		b := h.create(t, &jobs.Job{Kind: "kb", Queue: "qa"})[0]
		c := h.create(t, &jobs.Job{Kind: "ka", Queue: "qb"})[0]
		d := h.create(t, &jobs.Job{Kind: "kb"})[0]
		claimed := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Kinds: []string{"ka"}, Queues: []string{"qa"}, Limit: 1, LeaseDuration: hour})
		require.Equal(t, []uuid.UUID{a.ID}, ids(claimed))
		_, err := h.repo.RequestCancel(t.Context(), d.ID)
		require.NoError(t, err)
		for name, tc := range map[string]struct {
			q    jobs.ListQuery
			want []*jobs.Job
		}{
			"all":              {jobs.ListQuery{}, []*jobs.Job{d, c, b, a}},
			"kind":             {jobs.ListQuery{Kind: "ka"}, []*jobs.Job{c, a}},
			"queue":            {jobs.ListQuery{Queue: "qa"}, []*jobs.Job{b, a}},
			"default queue":    {jobs.ListQuery{Queue: rules.DefaultQueue}, []*jobs.Job{d}},
			"kind and queue":   {jobs.ListQuery{Kind: "kb", Queue: "qa"}, []*jobs.Job{b}},
			"status":           {jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending}}, []*jobs.Job{c, b}},
			"statuses":         {jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusRunning, jobs.StatusCanceled}}, []*jobs.Job{d, a}},
			"status and kind":  {jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending}, Kind: "ka"}, []*jobs.Job{c}},
			"nothing matches":  {jobs.ListQuery{Kind: "none"}, nil},
			"unused status":    {jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}, nil},
			"all the statuses": {jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusWaiting, jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}}, []*jobs.Job{d, c, b, a}},
		} {
			p, err := h.repo.List(t.Context(), tc.q)
			require.NoError(t, err, name)
			require.Equal(t, ids(tc.want), ids(p.Jobs), name)
			require.Empty(t, p.Next, name)
		}
	}},
	{"Pages", func(t *testing.T, h *harness) {
		js := h.createN(t, "k", 23)
		var (
			got   []uuid.UUID
			sizes []int
			q     = jobs.ListQuery{Limit: 5}
		)
		for range 10 {
			p, err := h.repo.List(t.Context(), q)
			require.NoError(t, err)
			got = append(got, ids(p.Jobs)...)
			sizes = append(sizes, len(p.Jobs))
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		require.Equal(t, []int{5, 5, 5, 5, 3}, sizes)
		require.Equal(t, reversed(js), got, "every job once, newest first")
	}},
	{"ExactLastPage", func(t *testing.T, h *harness) {
		h.createN(t, "k", 10)
		p, err := h.repo.List(t.Context(), jobs.ListQuery{Limit: 5})
		require.NoError(t, err)
		require.NotEmpty(t, p.Next)
		p, err = h.repo.List(t.Context(), jobs.ListQuery{Limit: 5, Cursor: p.Next})
		require.NoError(t, err)
		require.Len(t, p.Jobs, 5)
		require.Empty(t, p.Next, "a full last page has no Next")
	}},
	{"PagesWithFilter", func(t *testing.T, h *harness) {
		var want []*jobs.Job
		for i := range 12 {
			kind := "odd"
			if i%2 == 0 {
				kind = "even"
			}
			j := h.create(t, job(kind))[0]
			if kind == "even" {
				want = append(want, j)
			}
		}
		got := h.listAll(t, jobs.ListQuery{Kind: "even", Limit: 4})
		require.Equal(t, reversed(want), ids(got))
	}},
	{"PagesWhileCreating", func(t *testing.T, h *harness) {
		js := h.createN(t, "k", 20)
		q := jobs.ListQuery{Limit: 6}
		seen := map[uuid.UUID]int{}
		for range 20 {
			p, err := h.repo.List(t.Context(), q)
			require.NoError(t, err)
			for _, j := range p.Jobs {
				seen[j.ID]++
			}
			h.createN(t, "new", 3)
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		for _, j := range js {
			require.Equal(t, 1, seen[j.ID], "job %s listed once", j.ID)
		}
		for id, n := range seen {
			require.Equal(t, 1, n, "job %s listed twice", id)
		}
	}},
	{"CursorOfPrunedJob", func(t *testing.T, h *harness) {
		js := h.createN(t, "k", 6)
		p, err := h.repo.List(t.Context(), jobs.ListQuery{Limit: 3})
		require.NoError(t, err)
		// The cursor's own job is gone; paging still continues below it.
		_, err = h.repo.RequestCancel(t.Context(), p.Jobs[2].ID)
		require.NoError(t, err)
		n, err := h.repo.Prune(t.Context(), time.Now().Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		p, err = h.repo.List(t.Context(), jobs.ListQuery{Limit: 3, Cursor: p.Next})
		require.NoError(t, err)
		require.Equal(t, reversed(js[:3]), ids(p.Jobs))
	}},
	{"Limits", func(t *testing.T, h *harness) {
		h.createN(t, "k", rules.DefaultListLimit+1)
		p, err := h.repo.List(t.Context(), jobs.ListQuery{})
		require.NoError(t, err)
		require.Len(t, p.Jobs, rules.DefaultListLimit, "limit 0 means the default")
		require.NotEmpty(t, p.Next)
		p, err = h.repo.List(t.Context(), jobs.ListQuery{Limit: 1})
		require.NoError(t, err)
		require.Len(t, p.Jobs, 1)
		p, err = h.repo.List(t.Context(), jobs.ListQuery{Limit: rules.MaxListLimit})
		require.NoError(t, err)
		require.Len(t, p.Jobs, rules.DefaultListLimit+1)
		require.Empty(t, p.Next)
	}},
}

var statsCases = []testCase{
	{"Empty", func(t *testing.T, h *harness) {
		st := h.stats(t)
		require.Zero(t, st.Total)
		require.Zero(t, st.ByStatus[jobs.StatusPending])
	}},
	{"Counts", func(t *testing.T, h *harness) {
		h.create(t, &jobs.Job{Kind: "a", Queue: "q1"}, &jobs.Job{Kind: "a", Queue: "q1"}, &jobs.Job{Kind: "b", Queue: "q2"})
		h.create(t, &jobs.Job{Kind: "b"}, &jobs.Job{Kind: "c", RunAt: time.Now().Add(time.Hour)})
		run := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Queues: []string{"q1"}, Limit: 2, LeaseDuration: hour})
		require.Len(t, run, 2)
		h.finish(t, run[0], jobs.StatusSucceeded)
		h.finish(t, run[1], jobs.StatusFailed)
		h.claimQ(t, jobs.ClaimQuery{Owner: "w", Queues: []string{"q2"}, Limit: 1, LeaseDuration: hour})
		st := h.stats(t)
		require.Equal(t, 5, st.Total)
		require.Equal(t, map[jobs.Status]int{
			jobs.StatusPending: 2, jobs.StatusRunning: 1, jobs.StatusSucceeded: 1, jobs.StatusFailed: 1,
		}, nonZero(st.ByStatus))
		require.Equal(t, map[jobs.Status]int{jobs.StatusSucceeded: 1, jobs.StatusFailed: 1}, nonZero(st.ByKind["a"]))
		require.Equal(t, map[jobs.Status]int{jobs.StatusRunning: 1, jobs.StatusPending: 1}, nonZero(st.ByKind["b"]))
		require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 1}, nonZero(st.ByKind["c"]))
		require.Equal(t, map[jobs.Status]int{jobs.StatusSucceeded: 1, jobs.StatusFailed: 1}, nonZero(st.ByQueue["q1"]))
		require.Equal(t, map[jobs.Status]int{jobs.StatusRunning: 1}, nonZero(st.ByQueue["q2"]))
		require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 2}, nonZero(st.ByQueue[rules.DefaultQueue]))
		for k := range st.ByKind {
			require.Contains(t, []string{"a", "b", "c"}, k)
		}
		require.Len(t, st.ByQueue, 3)
	}},
	{"OldestPending", func(t *testing.T, h *harness) {
		st := h.stats(t)
		require.NotNil(t, st.OldestPending, "an empty map, not nil")
		require.Empty(t, st.OldestPending)
		base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
		h.create(t,
			&jobs.Job{Kind: "a", Queue: "q1", RunAt: base.Add(time.Minute)},
			&jobs.Job{Kind: "a", Queue: "q1", RunAt: base.Add(2 * time.Minute)},
			&jobs.Job{Kind: "a", Queue: "q2", RunAt: base.Add(3 * time.Minute)},
			&jobs.Job{Kind: "a", Queue: "q3", RunAt: time.Now().Add(time.Hour)}, // not due: not waiting yet
		)
		// The oldest job of q2 is claimed (running): it no longer waits.
		old := h.create(t, &jobs.Job{Kind: "b", Queue: "q2", RunAt: base})[0]
		got := h.claimQ(t, jobs.ClaimQuery{Owner: "w", Kinds: []string{"b"}, Limit: 1, LeaseDuration: hour})
		require.Len(t, got, 1)
		require.Equal(t, old.ID, got[0].ID)
		st = h.stats(t)
		require.Len(t, st.OldestPending, 2, "%v", st.OldestPending)
		require.WithinDuration(t, base.Add(time.Minute), st.OldestPending["q1"], time.Millisecond)
		require.WithinDuration(t, base.Add(3*time.Minute), st.OldestPending["q2"], time.Millisecond)
	}},
}

// nonZero drops the zero counts of m, so that an implementation may or may
// not list statuses it has no jobs in.
func nonZero(m map[jobs.Status]int) map[jobs.Status]int {
	out := map[jobs.Status]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
