package jobstest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// This file holds the cases of job dependencies (jobs.Job.DependsOn) at
// creation: which graphs Create refuses, and which status each job of a
// graph starts in. deps_end.go has the cases of the jobs' ends, and
// deps_race.go those of concurrent writers.

// after returns a job of the given kind that runs after the given jobs.
func after(kind string, parents ...*jobs.Job) *jobs.Job {
	j := job(kind)
	j.After = parents
	return j
}

// dependsOn returns a job of the given kind that runs after the stored
// jobs with the given IDs.
func dependsOn(kind string, ids ...uuid.UUID) *jobs.Job {
	j := job(kind)
	j.DependsOn = ids
	return j
}

// end claims j, the only pending job of its kind, and finishes it with st.
func (h *harness) end(t *testing.T, j *jobs.Job, st jobs.Status) {
	t.Helper()
	c := h.claimKind(t, j.Kind)
	require.Equal(t, []uuid.UUID{j.ID}, ids(c), "job %s should be the one claimable job of kind %q", j.ID, j.Kind)
	h.finish(t, c[0], st)
}

// claimKind claims every claimable job of the kind.
func (h *harness) claimKind(t *testing.T, kind string) []*jobs.Job {
	t.Helper()
	return h.claimQ(t, jobs.ClaimQuery{Owner: "w1", Kinds: []string{kind}, Limit: 100, LeaseDuration: hour})
}

// requireStatus fails unless each of js is stored with status st.
func (h *harness) requireStatus(t *testing.T, st jobs.Status, js ...*jobs.Job) {
	t.Helper()
	for _, j := range js {
		require.Equal(t, st, h.get(t, j.ID).Status, "job %s of kind %q", j.ID, j.Kind)
	}
}

// requireDepCanceled fails unless j is stored canceled because its
// dependency dep ended in status st, at a time within [from, to], without
// an attempt.
func (h *harness) requireDepCanceled(t *testing.T, j, dep *jobs.Job, st jobs.Status, from, to time.Time) {
	t.Helper()
	got := h.get(t, j.ID)
	require.Equal(t, jobs.StatusCanceled, got.Status, "job of kind %q", j.Kind)
	require.Equal(t, fmt.Sprintf("dependency %s %s", dep.ID, st), got.Error, "the error names the direct dependency")
	requireWithin(t, got.FinishedAt, from, to, "FinishedAt")
	require.Zero(t, got.Attempt, "no attempt is counted")
	requireUTC(t, got)
}

// requireUntouched fails unless j is as it was before a refused Create.
func requireUntouched(t *testing.T, before jobs.Job, j *jobs.Job) {
	t.Helper()
	require.Equal(t, uuid.Nil, j.ID)
	require.JSONEq(t, string(jsonOf(t, &before)), string(jsonOf(t, j)))
	require.Equal(t, len(before.After), len(j.After))
	for i := range j.After {
		require.Same(t, before.After[i], j.After[i], "After[%d] changed", i)
	}
}

var depCases = []testCase{
	{"InvalidGraphs", func(t *testing.T, h *harness) {
		// A graph that rules.Deps refuses, or that names a job by an ID
		// that is not stored, writes nothing and leaves the jobs as they
		// were, whatever the other jobs of the call.
		h.create(t, job("stored"))
		unknown := uuid.Must(uuid.NewV7())
		for name, call := range map[string]func() []*jobs.Job{
			"after a later job": func() []*jobs.Job {
				a, b := job("a"), job("b")
				a.After = []*jobs.Job{b}
				return []*jobs.Job{a, b}
			},
			"after itself": func() []*jobs.Job {
				a := job("a")
				a.After = []*jobs.Job{a}
				return []*jobs.Job{job("ok"), a}
			},
			"after a job neither created nor in the call": func() []*jobs.Job {
				return []*jobs.Job{job("ok"), after("a", job("ghost"))}
			},
			"after a nil job":         func() []*jobs.Job { return []*jobs.Job{after("a", nil)} },
			"an unknown ID":           func() []*jobs.Job { return []*jobs.Job{job("ok"), dependsOn("a", unknown)} },
			"the nil ID":              func() []*jobs.Job { return []*jobs.Job{dependsOn("a", uuid.Nil)} },
			"an unknown ID after one": func() []*jobs.Job { a := job("a"); return []*jobs.Job{a, after("b", a), dependsOn("c", unknown)} },
		} {
			js := call()
			before := make([]jobs.Job, len(js))
			for i, j := range js {
				before[i] = *j
				before[i].DependsOn = slices.Clone(j.DependsOn)
				before[i].After = slices.Clone(j.After)
			}
			err := h.repo.Create(t.Context(), js...)
			requireCode(t, err, jobs.ErrInvalidArgument, name)
			if slices.ContainsFunc(js, func(j *jobs.Job) bool { return slices.Contains(j.DependsOn, unknown) }) {
				require.Contains(t, err.Error(), unknown.String(), "%s: the error names the ID", name)
			}
			for i, j := range js {
				requireUntouched(t, before[i], j)
			}
			require.Equal(t, 1, h.total(t), "%s: nothing is written", name)
		}
	}},
	{"WaitingIsNotClaimed", func(t *testing.T, h *harness) {
		p := job("p")
		c := after("c", p)
		h.create(t, p, c)
		require.Equal(t, jobs.StatusPending, p.Status)
		require.Equal(t, jobs.StatusWaiting, c.Status)
		require.Equal(t, []uuid.UUID{p.ID}, c.DependsOn)
		require.Nil(t, c.After, "After is cleared")
		require.True(t, c.FinishedAt.IsZero())
		requireSame(t, c, h.get(t, c.ID))
		got := h.claim(t, 10)
		require.Equal(t, []uuid.UUID{p.ID}, ids(got), "a waiting job is never claimed")
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Empty(t, rescued)
		h.requireStatus(t, jobs.StatusWaiting, c)
	}},
	{"PendingWhenParentsSucceed", func(t *testing.T, h *harness) {
		// A job waits for all of its dependencies (fan-in), then is pending
		// and claimable.
		a, b := job("a"), job("b")
		c := after("c", a, b)
		h.create(t, a, b, c)
		h.end(t, a, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusWaiting, c)
		require.Empty(t, h.claimKind(t, "c"))
		h.end(t, b, jobs.StatusSucceeded)
		got := h.get(t, c.ID)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.True(t, got.FinishedAt.IsZero())
		require.Zero(t, got.Attempt)
		require.Equal(t, []uuid.UUID{a.ID, b.ID}, got.DependsOn)
		claimed := h.claimKind(t, "c")
		require.Equal(t, []uuid.UUID{c.ID}, ids(claimed))
		require.Equal(t, 1, claimed[0].Attempt)
	}},
	{"PendingNotBeforeRunAt", func(t *testing.T, h *harness) {
		p := job("p")
		c := after("c", p)
		c.RunAt = time.Now().Add(time.Hour)
		h.create(t, p, c)
		require.Equal(t, jobs.StatusWaiting, c.Status)
		h.end(t, p, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, c)
		require.Empty(t, h.claimKind(t, "c"), "a pending job is claimed once its RunAt has come")
	}},
	{"ChainInOneCall", func(t *testing.T, h *harness) {
		a := job("a")
		b := after("b", a)
		c := after("c", b)
		h.create(t, a, b, c)
		require.Equal(t, jobs.StatusWaiting, b.Status)
		require.Equal(t, jobs.StatusWaiting, c.Status)
		require.Equal(t, []uuid.UUID{b.ID}, c.DependsOn)
		h.end(t, a, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, b)
		h.requireStatus(t, jobs.StatusWaiting, c)
		h.end(t, b, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, c)
	}},
	{"DependsOnOrder", func(t *testing.T, h *harness) {
		// DependsOn lists every dependency once, in the order given: the
		// IDs, then the jobs of After.
		a, b := job("a"), job("b")
		h.create(t, a, b)
		c := job("c")
		d := dependsOn("d", b.ID, a.ID, b.ID)
		d.After = []*jobs.Job{c, a, c}
		d.RunAnyway = true
		h.create(t, c, d)
		want := []uuid.UUID{b.ID, a.ID, c.ID}
		require.Equal(t, want, d.DependsOn)
		got := h.get(t, d.ID)
		require.Equal(t, want, got.DependsOn)
		require.True(t, got.RunAnyway)
		require.Empty(t, h.get(t, a.ID).DependsOn)
	}},
	{"CreatedAfterEnded", func(t *testing.T, h *harness) {
		// A dependency that has already ended decides at once.
		ok := h.inStatus(t, jobs.StatusSucceeded)
		bad := h.inStatus(t, jobs.StatusFailed)
		gone := h.inStatus(t, jobs.StatusCanceled)
		open := h.create(t, job("open"))[0]

		before := time.Now()
		pend := dependsOn("pend", ok.ID)
		failed := dependsOn("failed", ok.ID, bad.ID, gone.ID)
		canceled := dependsOn("canceled", gone.ID, bad.ID)
		anyway := dependsOn("anyway", bad.ID, gone.ID, ok.ID)
		anyway.RunAnyway = true
		wait := dependsOn("wait", bad.ID, open.ID)
		wait.RunAnyway = true
		waitOK := dependsOn("waitok", ok.ID, open.ID)
		h.create(t, pend, failed, canceled, anyway, wait, waitOK)
		after := time.Now()

		require.Equal(t, jobs.StatusPending, pend.Status)
		h.requireDepCanceled(t, failed, bad, jobs.StatusFailed, before, after)
		h.requireDepCanceled(t, canceled, gone, jobs.StatusCanceled, before, after)
		require.Equal(t, jobs.StatusPending, anyway.Status)
		require.Equal(t, jobs.StatusWaiting, wait.Status)
		require.Equal(t, jobs.StatusWaiting, waitOK.Status)
		for _, j := range []*jobs.Job{pend, failed, canceled, anyway, wait, waitOK} {
			requireSame(t, j, h.get(t, j.ID))
		}
		require.Equal(t, []uuid.UUID{pend.ID}, ids(h.claimKind(t, "pend")))
		require.Equal(t, []uuid.UUID{anyway.ID}, ids(h.claimKind(t, "anyway")))
		require.Empty(t, h.claimKind(t, "failed"))
	}},
	{"CanceledAtCreationCascades", func(t *testing.T, h *harness) {
		// A job canceled at its creation because of its dependencies
		// cancels the jobs of the same call that depend on it.
		bad := h.inStatus(t, jobs.StatusFailed)
		before := time.Now()
		b := dependsOn("b", bad.ID)
		c := after("c", b)
		d := after("d", c)
		d.RunAnyway = true
		h.create(t, b, c, d)
		after := time.Now()
		h.requireDepCanceled(t, b, bad, jobs.StatusFailed, before, after)
		h.requireDepCanceled(t, c, b, jobs.StatusCanceled, before, after)
		require.Equal(t, jobs.StatusPending, d.Status, "a job that runs anyway counts a canceled dependency as ended")
	}},
	{"DuplicateParent", func(t *testing.T, h *harness) {
		// A job that names in After a job made a Duplicate by its unique
		// key depends on the job holding the key.
		held := h.create(t, &jobs.Job{Kind: "p", UniqueKey: "u"})[0]
		done := h.failed(t, &jobs.Job{Kind: "q", UniqueKey: "v"})
		dup := &jobs.Job{Kind: "p", UniqueKey: "u"}
		c := after("c", dup)
		c.DependsOn = []uuid.UUID{held.ID}
		dupDone := &jobs.Job{Kind: "q", UniqueKey: "v"}
		d := after("d", dupDone)
		inCall := &jobs.Job{Kind: "r", UniqueKey: "w"}
		again := &jobs.Job{Kind: "r", UniqueKey: "w"}
		e := after("e", again)
		before := time.Now()
		h.create(t, dup, c, dupDone, d, inCall, again, e)
		after := time.Now()

		require.True(t, dup.Duplicate)
		require.Equal(t, held.ID, dup.ID)
		require.Equal(t, jobs.StatusWaiting, c.Status)
		require.Equal(t, []uuid.UUID{held.ID}, c.DependsOn, "each dependency once")
		h.requireDepCanceled(t, d, done, jobs.StatusFailed, before, after)
		require.True(t, again.Duplicate)
		require.Equal(t, inCall.ID, again.ID)
		require.Equal(t, []uuid.UUID{inCall.ID}, e.DependsOn)
		require.Equal(t, jobs.StatusWaiting, e.Status)
		require.Equal(t, 6, h.total(t))

		h.end(t, held, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, c)
		h.end(t, inCall, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, e)
	}},
	{"ListAndStats", func(t *testing.T, h *harness) {
		p := &jobs.Job{Kind: "p", Queue: "q1"}
		c := &jobs.Job{Kind: "c", Queue: "q2", After: []*jobs.Job{p}, RunAnyway: true}
		d := &jobs.Job{Kind: "d", Queue: "q2", After: []*jobs.Job{c}}
		h.create(t, p, c, d)
		page, err := h.repo.List(t.Context(), jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusWaiting}})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{d.ID, c.ID}, ids(page.Jobs))
		require.Equal(t, []uuid.UUID{p.ID}, page.Jobs[1].DependsOn)
		require.True(t, page.Jobs[1].RunAnyway)
		page, err = h.repo.List(t.Context(), jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending}})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{p.ID}, ids(page.Jobs))

		s := h.stats(t)
		require.Equal(t, 3, s.Total)
		require.Equal(t, 2, s.ByStatus[jobs.StatusWaiting])
		require.Equal(t, 1, s.ByStatus[jobs.StatusPending])
		require.Equal(t, 1, s.ByKind["c"][jobs.StatusWaiting])
		require.Equal(t, 2, s.ByQueue["q2"][jobs.StatusWaiting])
		require.NotContains(t, s.OldestPending, "q2", "a waiting job is not pending")

		h.end(t, p, jobs.StatusSucceeded)
		s = h.stats(t)
		require.Equal(t, 1, s.ByStatus[jobs.StatusWaiting])
		require.Equal(t, 1, s.ByStatus[jobs.StatusPending])
		require.Contains(t, s.OldestPending, "q2")
	}},
	{"InTx", func(t *testing.T, h *harness) {
		open := h.create(t, job("open"))[0] // before the transaction, which may hold the write lock
		tx := h.beginTx(t)
		a := job("a")
		b := after("b", a)
		c := dependsOn("c", open.ID)
		require.NoError(t, h.repo.CreateTx(t.Context(), tx.Value, a, b, c))
		require.Equal(t, jobs.StatusWaiting, b.Status)
		require.Equal(t, []uuid.UUID{a.ID}, b.DependsOn)
		require.NoError(t, tx.Commit())
		requireSame(t, b, h.get(t, b.ID))
		h.requireStatus(t, jobs.StatusWaiting, c)
		h.end(t, a, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, b)
		h.end(t, open, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusCanceled, c)

		tx = h.beginTx(t)
		bad := dependsOn("bad", uuid.Must(uuid.NewV7()))
		requireCode(t, h.repo.CreateTx(t.Context(), tx.Value, job("x"), bad), jobs.ErrInvalidArgument)
		require.Equal(t, uuid.Nil, bad.ID)
		require.NoError(t, tx.Commit(), "a refused CreateTx leaves the transaction usable")
		require.Equal(t, 4, h.total(t))
	}},
}
