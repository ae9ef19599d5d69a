package jobstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// depEndCases check what the end of a job does to the jobs waiting for
// it, whatever path ends it: Finish, RequestCancel, Release, RescueExpired,
// CancelMany or a claim that cannot read the row.
var depEndCases = []testCase{
	{"FailureCascades", func(t *testing.T, h *harness) {
		// A failed job cancels the jobs waiting for it, each naming its
		// direct dependency, down through their own dependents (a chain
		// and a diamond).
		a := job("a")
		b := after("b", a)
		c := after("c", b)
		x1, x2 := after("x1", a), after("x2", a)
		y := after("y", x1, x2)
		other := job("other")
		z := after("z", other)
		h.create(t, a, b, c, x1, x2, y, other, z)
		before := time.Now()
		h.end(t, a, jobs.StatusFailed)
		after := time.Now()
		h.requireDepCanceled(t, b, a, jobs.StatusFailed, before, after)
		h.requireDepCanceled(t, c, b, jobs.StatusCanceled, before, after)
		h.requireDepCanceled(t, x1, a, jobs.StatusFailed, before, after)
		h.requireDepCanceled(t, x2, a, jobs.StatusFailed, before, after)
		got := h.get(t, y.ID)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		require.Contains(t, []string{
			fmt.Sprintf("dependency %s canceled", x1.ID), fmt.Sprintf("dependency %s canceled", x2.ID),
		}, got.Error, "the error names a direct dependency")
		h.requireStatus(t, jobs.StatusWaiting, z)
		for _, k := range []string{"b", "c", "x1", "x2", "y"} {
			require.Empty(t, h.claimKind(t, k), "a canceled job is never claimed")
		}
	}},
	{"RunAnyway", func(t *testing.T, h *harness) {
		// A job that runs anyway counts a failed or canceled dependency as
		// ended, also one canceled by the cascade.
		a, open := job("a"), job("open")
		b := after("b", a)
		b.RunAnyway = true
		c := after("c", a)
		d := after("d", c)
		d.RunAnyway = true
		e := after("e", a, open)
		e.RunAnyway = true
		h.create(t, a, open, b, c, d, e)
		h.end(t, a, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusPending, b, d)
		h.requireStatus(t, jobs.StatusCanceled, c)
		h.requireStatus(t, jobs.StatusWaiting, e)
		require.Equal(t, []uuid.UUID{b.ID}, ids(h.claimKind(t, "b")))
		require.Equal(t, []uuid.UUID{d.ID}, ids(h.claimKind(t, "d")))
		_, err := h.repo.RequestCancel(t.Context(), open.ID)
		require.NoError(t, err)
		h.requireStatus(t, jobs.StatusPending, e)
	}},
	{"CanceledPendingParent", func(t *testing.T, h *harness) {
		p := job("p")
		c := after("c", p)
		g := after("g", c)
		h.create(t, p, c, g)
		before := time.Now()
		_, err := h.repo.RequestCancel(t.Context(), p.ID)
		require.NoError(t, err)
		after := time.Now()
		h.requireDepCanceled(t, c, p, jobs.StatusCanceled, before, after)
		h.requireDepCanceled(t, g, c, jobs.StatusCanceled, before, after)
	}},
	{"CancelWaiting", func(t *testing.T, h *harness) {
		// A waiting job is canceled at once, as a pending one is, and the
		// jobs waiting for it follow.
		p := job("p")
		c := after("c", p)
		g := after("g", c)
		h.create(t, p, c, g)
		before := time.Now()
		got, err := h.repo.RequestCancel(t.Context(), c.ID)
		after := time.Now()
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		requireWithin(t, got.FinishedAt, before, after, "FinishedAt")
		requireSame(t, got, h.get(t, c.ID))
		h.requireDepCanceled(t, g, c, jobs.StatusCanceled, before, after)
		h.requireStatus(t, jobs.StatusPending, p)
		_, err = h.repo.RequestCancel(t.Context(), c.ID)
		requireCode(t, err, jobs.ErrConflict)

		h.end(t, p, jobs.StatusSucceeded)
		requireSame(t, got, h.get(t, c.ID))
		require.Empty(t, h.claimKind(t, "c"))
	}},
	{"CancelRequestedParent", func(t *testing.T, h *harness) {
		// A running job canceled by its worker's Finish or Release
		// cancels the jobs waiting for it.
		h.create(t, job("p1"), job("p2"))
		p1, p2 := h.claimKind(t, "p1")[0], h.claimKind(t, "p2")[0]
		c1, c2 := dependsOn("c1", p1.ID), dependsOn("c2", p2.ID)
		h.create(t, c1, c2)
		require.Equal(t, jobs.StatusWaiting, c1.Status, "a running dependency has not ended")
		for _, p := range []*jobs.Job{p1, p2} {
			_, err := h.repo.RequestCancel(t.Context(), p.ID)
			require.NoError(t, err)
		}
		h.requireStatus(t, jobs.StatusWaiting, c1, c2)
		before := time.Now()
		requireCanceledInstead(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: p1.Lease(), Status: jobs.StatusSucceeded}), p1.ID)
		requireCanceledInstead(t, h.repo.Release(t.Context(), p2.Lease()), p2.ID)
		after := time.Now()
		h.requireDepCanceled(t, c1, p1, jobs.StatusCanceled, before, after)
		h.requireDepCanceled(t, c2, p2, jobs.StatusCanceled, before, after)
	}},
	{"NotEndedYet", func(t *testing.T, h *harness) {
		// A dependency retried, released or rescued to pending has not
		// ended: the job still waits for it.
		h.create(t, job("p1"), job("p2"))
		p1, p2 := h.claimKind(t, "p1")[0], h.claimKind(t, "p2")[0]
		c := dependsOn("c", p1.ID, p2.ID)
		h.create(t, c)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: p1.Lease(), Status: jobs.StatusPending, Error: "retry"}))
		require.NoError(t, h.repo.Release(t.Context(), p2.Lease()))
		h.requireStatus(t, jobs.StatusWaiting, c)
		h.end(t, p1, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusWaiting, c)
		h.end(t, p2, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, c)
	}},
	{"RescuedParent", func(t *testing.T, h *harness) {
		// RescueExpired ends a job failed (no attempt left) or canceled (a
		// cancel was requested); one rescued to pending has not ended.
		n := 0
		ps := h.claimExpiring(t, 3, func() *jobs.Job {
			n++
			return &jobs.Job{Kind: fmt.Sprintf("p%d", n), MaxAttempts: n}
		})
		byKind := map[string]*jobs.Job{}
		for _, p := range ps {
			byKind[p.Kind] = p
		}
		last, again, asked := byKind["p1"], byKind["p2"], byKind["p3"]
		c1, c2, c3 := dependsOn("c1", last.ID), dependsOn("c2", again.ID), dependsOn("c3", asked.ID)
		h.create(t, c1, c2, c3)
		_, err := h.repo.RequestCancel(t.Context(), asked.ID)
		require.NoError(t, err)
		before := time.Now()
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		after := time.Now()
		require.NoError(t, err)
		require.Len(t, rescued, 3)
		h.requireStatus(t, jobs.StatusFailed, last)
		h.requireStatus(t, jobs.StatusPending, again)
		h.requireStatus(t, jobs.StatusCanceled, asked)
		h.requireDepCanceled(t, c1, last, jobs.StatusFailed, before, after)
		h.requireStatus(t, jobs.StatusWaiting, c2)
		h.requireDepCanceled(t, c3, asked, jobs.StatusCanceled, before, after)
	}},
	{"CancelMany", func(t *testing.T, h *harness) {
		// CancelMany ends the pending and waiting jobs it cancels, and the
		// jobs waiting for them follow.
		p, q := job("p"), job("q")
		c := after("c", p)
		w := after("w", q)
		g := after("g", w)
		h.create(t, p, q, c, w, g)
		before := time.Now()
		got, err := h.repo.CancelMany(t.Context(), jobs.ListQuery{Kind: "p"})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{p.ID}, got)
		got, err = h.repo.CancelMany(t.Context(), jobs.ListQuery{Kind: "w", Statuses: []jobs.Status{jobs.StatusWaiting}})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{w.ID}, got)
		after := time.Now()
		h.requireDepCanceled(t, c, p, jobs.StatusCanceled, before, after)
		h.requireStatus(t, jobs.StatusCanceled, w)
		h.requireDepCanceled(t, g, w, jobs.StatusCanceled, before, after)
		h.requireStatus(t, jobs.StatusPending, q)
	}},
	{"RetryCanceledDependent", func(t *testing.T, h *harness) {
		// An operator's Retry of a job canceled for its dependency runs it,
		// as a new job, whatever its dependencies.
		p := job("p")
		c := after("c", p)
		h.create(t, p, c)
		h.end(t, p, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusCanceled, c)
		got, err := h.repo.Retry(t.Context(), c.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.Equal(t, []uuid.UUID{p.ID}, got.DependsOn)
		require.Equal(t, []uuid.UUID{c.ID}, ids(h.claimKind(t, "c")))
	}},
	{"UnreadableParent", func(t *testing.T, h *harness) {
		// A job that a claim fails because its row cannot be read has
		// ended: the jobs waiting for it are canceled.
		if h.cfg.corrupt == nil {
			t.Skip("the repository cannot corrupt a row (no jobstest.WithCorruptRow option)")
		}
		p := job("p")
		c := after("c", p)
		h.create(t, p, c)
		h.cfg.corrupt(t, h.repo, p.ID)
		if len(h.claimKind(t, "p")) > 0 {
			return // the repository could read the damaged row and handed it out
		}
		got := h.get(t, c.ID)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		require.Equal(t, fmt.Sprintf("dependency %s failed", p.ID), got.Error)
	}},
}
