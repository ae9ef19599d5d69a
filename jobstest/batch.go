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

// This file holds the cases of batches (jobs.Job.Batch): which batches
// Create refuses, the batch's progress, made of its jobs', the cancel of a
// batch, and its end, by itself or through its callback. batch_race.go has
// the case of its last jobs ending at once.

// fractionDelta is how far a batch's fraction may be from the exact mean:
// a repository may add each job's change to it.
const fractionDelta = 1e-9

// batchOf returns a batch of the given kind whose jobs are js.
func batchOf(kind string, js ...*jobs.Job) *jobs.Job {
	return &jobs.Job{Kind: kind, Batch: true, After: js}
}

// progress reports fraction f for the running job j.
func (h *harness) progress(t *testing.T, j *jobs.Job, f float64) {
	t.Helper()
	require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: jobs.Progress{Fraction: f}}))
}

// requireFraction fails unless the stored batch b has fraction want and no
// message.
func (h *harness) requireFraction(t *testing.T, b *jobs.Job, want float64, msgAndArgs ...any) {
	t.Helper()
	got := h.get(t, b.ID)
	require.InDelta(t, want, got.Progress.Fraction, fractionDelta, msgAndArgs...)
	require.Empty(t, got.Progress.Message, "a batch's message is left as is")
}

var batchCases = []testCase{
	{"InvalidBatches", func(t *testing.T, h *harness) {
		// A batch without jobs, or that takes a job of another batch (even
		// one that has ended, or one of the same call), writes nothing and
		// leaves the jobs as they were.
		held, done := job("held"), job("done")
		h.create(t, held, batchOf(jobs.BatchKind, held), done, batchOf(jobs.BatchKind, done))
		h.end(t, done, jobs.StatusSucceeded)
		free := h.create(t, job("free"))[0]
		total := h.total(t)
		for name, call := range map[string]func() []*jobs.Job{
			"no job":        func() []*jobs.Job { return []*jobs.Job{job("ok"), {Kind: "b", Batch: true}} },
			"no job either": func() []*jobs.Job { return []*jobs.Job{{Kind: jobs.BatchKind, Batch: true}} },
			"a job of another batch": func() []*jobs.Job {
				return []*jobs.Job{job("ok"), {Kind: "b", Batch: true, DependsOn: []uuid.UUID{free.ID, held.ID}}}
			},
			"a job of an ended batch": func() []*jobs.Job {
				a := job("a")
				return []*jobs.Job{a, {Kind: "b", Batch: true, DependsOn: []uuid.UUID{done.ID}, After: []*jobs.Job{a}}}
			},
			"a job of an earlier batch of the call": func() []*jobs.Job {
				a, b := job("a"), job("b")
				return []*jobs.Job{a, b, batchOf("b1", a), batchOf("b2", b, a)}
			},
			"a stored job of an earlier batch of the call": func() []*jobs.Job {
				return []*jobs.Job{
					{Kind: "b1", Batch: true, DependsOn: []uuid.UUID{free.ID}},
					{Kind: "b2", Batch: true, DependsOn: []uuid.UUID{free.ID}},
				}
			},
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
			for _, id := range []uuid.UUID{held.ID, done.ID} {
				if slices.ContainsFunc(js, func(j *jobs.Job) bool { return slices.Contains(j.DependsOn, id) }) {
					require.Contains(t, err.Error(), id.String(), "%s: the error names the job", name)
				}
			}
			for i, j := range js {
				requireUntouched(t, before[i], j)
			}
			require.Equal(t, total, h.total(t), "%s: nothing is written", name)
		}
		// The job that no batch took is free.
		b := &jobs.Job{Kind: "b", Batch: true, DependsOn: []uuid.UUID{free.ID}}
		h.create(t, b)
		require.Equal(t, jobs.StatusWaiting, b.Status)
	}},
	{"Created", func(t *testing.T, h *harness) {
		// A batch waits for its jobs and runs anyway, whatever was asked;
		// Get returns it so. Its jobs are not batches.
		a, b := job("a"), job("b")
		bt := batchOf("report", a, b)
		h.create(t, a, b, bt)
		require.True(t, bt.Batch)
		require.True(t, bt.RunAnyway, "RunAnyway is set on a batch")
		require.Equal(t, jobs.StatusWaiting, bt.Status)
		require.Equal(t, []uuid.UUID{a.ID, b.ID}, bt.DependsOn)
		require.Nil(t, bt.After)
		require.Zero(t, bt.Progress.Fraction)
		got := h.get(t, bt.ID)
		requireSame(t, bt, got)
		require.True(t, got.Batch)
		require.True(t, got.RunAnyway)
		require.False(t, h.get(t, a.ID).Batch)
		require.False(t, a.RunAnyway)

		h.end(t, a, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusWaiting, bt)
		require.Empty(t, h.claimKind(t, "report"), "a batch waits for all of its jobs")
	}},
	{"ProgressOfJobs", func(t *testing.T, h *harness) {
		// The batch's fraction is the mean of its jobs' fractions, an
		// ended job counting as 1, after each progress update and each
		// end, by whatever path.
		ps := jobsOf("p", 4)
		bt := batchOf("report", ps...)
		h.create(t, append(ps, bt)...)
		c := h.claimKind(t, "p")
		require.Len(t, c, 4)
		h.progress(t, c[0], 0.5)
		h.requireFraction(t, bt, 0.5/4)
		h.progress(t, c[1], 0.25)
		h.requireFraction(t, bt, 0.75/4)
		p := jobs.Progress{Fraction: 0.2, Message: "done"}
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c[0].Lease(), Status: jobs.StatusSucceeded, Progress: &p}))
		h.requireFraction(t, bt, 1.25/4, "an ended job counts as 1, whatever its own progress")
		h.finish(t, c[2], jobs.StatusFailed)
		h.requireFraction(t, bt, 2.25/4, "a failed job has ended")
		h.progress(t, c[1], 0.1)
		h.requireFraction(t, bt, 2.1/4, "a fraction may go down")
		p = jobs.Progress{Fraction: 0.6}
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c[1].Lease(), Status: jobs.StatusPending, Error: "again", Progress: &p}))
		h.requireFraction(t, bt, 2.6/4, "a job to retry has not ended")
		_, err := h.repo.RequestCancel(t.Context(), c[3].ID)
		require.NoError(t, err)
		h.requireFraction(t, bt, 2.6/4, "a cancel request does not end a job")
		requireCanceledInstead(t, h.repo.Release(t.Context(), c[3].Lease()), c[3].ID)
		h.requireFraction(t, bt, 3.6/4)
		again := h.claimKind(t, "p")
		require.Equal(t, []uuid.UUID{c[1].ID}, ids(again))
		h.progress(t, again[0], 0.8)
		h.requireFraction(t, bt, 3.8/4)
		h.finish(t, again[0], jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, bt)
		h.requireFraction(t, bt, 1)
	}},
	{"ProgressOfNestedBatches", func(t *testing.T, h *harness) {
		// A batch among the jobs of a batch counts as its fraction,
		// moved by its own jobs, until it has ended.
		x, y, z := job("x"), job("y"), job("z")
		inner := batchOf("inner", x, y)
		outer := batchOf("report", inner, z)
		h.create(t, x, y, inner, z, outer)
		c := h.claimKind(t, "x")
		require.Len(t, c, 1)
		h.progress(t, c[0], 0.5)
		h.requireFraction(t, inner, 0.25)
		h.requireFraction(t, outer, 0.125, "the inner batch's fraction moves the outer one")
		h.finish(t, c[0], jobs.StatusSucceeded)
		h.requireFraction(t, inner, 0.5)
		h.requireFraction(t, outer, 0.25)
		h.end(t, y, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusPending, inner)
		h.requireFraction(t, inner, 1)
		h.requireFraction(t, outer, 0.5, "the inner batch is done waiting: its fraction is 1")
		h.end(t, inner, jobs.StatusSucceeded)
		h.requireFraction(t, outer, 0.5)
		h.end(t, z, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, outer)
		h.requireFraction(t, outer, 1)
	}},
	{"ProgressAtCreation", func(t *testing.T, h *harness) {
		// A batch of stored jobs starts with the mean of their current
		// fractions, an ended job counting as 1.
		run := h.running(t)
		h.progress(t, run, 0.4)
		ok := h.inStatus(t, jobs.StatusSucceeded)
		bad := h.inStatus(t, jobs.StatusFailed)
		open := h.create(t, job("open"))[0]
		fresh := job("fresh")
		bt := &jobs.Job{Kind: "report", Batch: true, DependsOn: []uuid.UUID{run.ID, ok.ID, bad.ID, open.ID}, After: []*jobs.Job{fresh}}
		h.create(t, fresh, bt)
		require.Equal(t, jobs.StatusWaiting, bt.Status)
		require.InDelta(t, 2.4/5, bt.Progress.Fraction, fractionDelta)
		h.requireFraction(t, bt, 2.4/5)
		h.progress(t, run, 0.9)
		h.requireFraction(t, bt, 2.9/5)
	}},
	{"CancelWaiting", func(t *testing.T, h *harness) {
		// RequestCancel of a waiting batch cancels it and its jobs that are
		// waiting or pending, and requests the cancel of its running ones;
		// the jobs waiting for any of them follow. The canceled batch
		// changes no more.
		outside := job("outside")
		w := after("w", outside)
		pe, ru, ok := job("pe"), job("ru"), job("ok")
		bt := batchOf("report", w, pe, ru, ok)
		g := after("g", pe)
		next := after("next", bt)
		h.create(t, outside, w, pe, ru, ok, bt, g, next)
		running := h.claimKind(t, "ru")
		require.Len(t, running, 1)
		h.end(t, ok, jobs.StatusSucceeded)

		before := time.Now()
		got, err := h.repo.RequestCancel(t.Context(), bt.ID)
		after := time.Now()
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		requireWithin(t, got.FinishedAt, before, after, "FinishedAt")
		requireSame(t, got, h.get(t, bt.ID))
		for _, j := range []*jobs.Job{w, pe} {
			s := h.get(t, j.ID)
			require.Equal(t, jobs.StatusCanceled, s.Status, "job of kind %q", j.Kind)
			requireWithin(t, s.FinishedAt, before, after, "FinishedAt of "+j.Kind)
		}
		r := h.get(t, ru.ID)
		require.Equal(t, jobs.StatusRunning, r.Status)
		require.True(t, r.CancelRequested)
		reqs, err := h.repo.CancelRequests(t.Context(), "w1")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{ru.ID}, reqs)
		h.requireStatus(t, jobs.StatusSucceeded, ok)
		h.requireStatus(t, jobs.StatusPending, outside)
		h.requireDepCanceled(t, g, pe, jobs.StatusCanceled, before, after)
		h.requireDepCanceled(t, next, bt, jobs.StatusCanceled, before, after)

		h.progress(t, running[0], 0.5)
		requireCanceledInstead(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: running[0].Lease(), Status: jobs.StatusSucceeded}), ru.ID)
		requireSame(t, got, h.get(t, bt.ID))
		require.Empty(t, h.claimKind(t, "report"))
		require.Empty(t, h.claimKind(t, "pe"))
		require.Equal(t, []uuid.UUID{outside.ID}, ids(h.claimKind(t, "outside")))

		// CancelMany alike.
		a, b := job("a"), job("b")
		bt2 := batchOf("report2", a, b)
		h.create(t, a, b, bt2)
		cm, err := h.repo.CancelMany(t.Context(), jobs.ListQuery{Kind: "report2"})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{bt2.ID}, cm)
		h.requireStatus(t, jobs.StatusCanceled, bt2, a, b)
	}},
	{"EndsSucceeded", func(t *testing.T, h *harness) {
		// A batch without a callback ends by itself when its last job
		// ends, succeeded when they all did; it is never claimed, and no
		// job may run after it (a batch runs work after its jobs through
		// its callback).
		a, b := job("a"), job("b")
		bt := batchOf(jobs.BatchKind, a, b)
		h.create(t, a, b, bt)
		next := after("next", bt)
		requireCode(t, h.repo.Create(t.Context(), next), jobs.ErrInvalidArgument)
		require.Equal(t, uuid.Nil, next.ID, "the job is left as it was")
		h.end(t, a, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusWaiting, bt)
		before := time.Now()
		h.end(t, b, jobs.StatusSucceeded)
		after := time.Now()
		got := h.get(t, bt.ID)
		require.Equal(t, jobs.StatusSucceeded, got.Status)
		requireWithin(t, got.FinishedAt, before, after, "FinishedAt")
		require.InDelta(t, 1, got.Progress.Fraction, fractionDelta)
		require.Empty(t, got.Error)
		require.Zero(t, got.Attempt, "no attempt is counted")
		require.True(t, got.StartedAt.IsZero())
		requireUTC(t, got)
		require.Empty(t, h.claimKind(t, jobs.BatchKind))
	}},
	{"EndsFailed", func(t *testing.T, h *harness) {
		// Failed when some job did not succeed (failed or canceled), with
		// how many in its Error.
		a, b, c := job("a"), job("b"), job("c")
		bt := batchOf(jobs.BatchKind, a, b, c)
		h.create(t, a, b, c, bt)
		h.end(t, a, jobs.StatusSucceeded)
		h.end(t, b, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusWaiting, bt)
		before := time.Now()
		_, err := h.repo.RequestCancel(t.Context(), c.ID)
		require.NoError(t, err)
		after := time.Now()
		got := h.get(t, bt.ID)
		require.Equal(t, jobs.StatusFailed, got.Status)
		require.Equal(t, "2 of 3 jobs did not succeed", got.Error)
		requireWithin(t, got.FinishedAt, before, after, "FinishedAt")
		require.InDelta(t, 1, got.Progress.Fraction, fractionDelta)
		require.Zero(t, got.Attempt)
		require.Empty(t, h.claimKind(t, jobs.BatchKind))
	}},
	{"EndsAtCreation", func(t *testing.T, h *harness) {
		// A batch whose jobs have all ended when it is created (stored so,
		// or canceled at this creation for their dependencies) ends at
		// once without a callback, or is pending with one.
		ok1, ok2, ok3 := h.inStatus(t, jobs.StatusSucceeded), h.inStatus(t, jobs.StatusSucceeded), h.inStatus(t, jobs.StatusSucceeded)
		bad1, bad2 := h.inStatus(t, jobs.StatusFailed), h.inStatus(t, jobs.StatusFailed)
		b1 := &jobs.Job{Kind: jobs.BatchKind, Batch: true, DependsOn: []uuid.UUID{ok1.ID}}
		b2 := &jobs.Job{Kind: jobs.BatchKind, Batch: true, DependsOn: []uuid.UUID{ok2.ID, bad1.ID}}
		x := dependsOn("x", bad2.ID)
		b3 := batchOf(jobs.BatchKind, x)
		cb := &jobs.Job{Kind: "report", Batch: true, DependsOn: []uuid.UUID{ok3.ID}}
		before := time.Now()
		h.create(t, b1, b2, x, b3, cb)
		after := time.Now()
		require.Equal(t, jobs.StatusSucceeded, b1.Status)
		require.Equal(t, jobs.StatusFailed, b2.Status)
		require.Equal(t, "1 of 2 jobs did not succeed", b2.Error)
		require.Equal(t, jobs.StatusCanceled, x.Status)
		require.Equal(t, jobs.StatusFailed, b3.Status)
		require.Equal(t, "1 of 1 jobs did not succeed", b3.Error)
		require.Equal(t, jobs.StatusPending, cb.Status)
		for _, b := range []*jobs.Job{b1, b2, b3, cb} {
			require.InDelta(t, 1, b.Progress.Fraction, fractionDelta)
			requireSame(t, b, h.get(t, b.ID))
		}
		for _, b := range []*jobs.Job{b1, b2, b3} {
			requireWithin(t, b.FinishedAt, before, after, "FinishedAt")
		}
		require.Empty(t, h.claimKind(t, jobs.BatchKind))
		require.Equal(t, []uuid.UUID{cb.ID}, ids(h.claimKind(t, "report")))
	}},
	{"CallbackPendingOnce", func(t *testing.T, h *harness) {
		// A batch with a callback becomes pending when its last job ends,
		// whatever their outcomes, and is claimed once, as a job.
		a, b := job("a"), job("b")
		bt := batchOf("report", a, b)
		h.create(t, a, b, bt)
		h.end(t, a, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusWaiting, bt)
		h.end(t, b, jobs.StatusSucceeded)
		got := h.get(t, bt.ID)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.True(t, got.FinishedAt.IsZero())
		require.Zero(t, got.Attempt)
		require.Empty(t, got.Error)
		require.InDelta(t, 1, got.Progress.Fraction, fractionDelta)
		c := h.claimKind(t, "report")
		require.Equal(t, []uuid.UUID{bt.ID}, ids(c))
		require.Equal(t, 1, c[0].Attempt)
		require.True(t, c[0].Batch)
		require.Equal(t, []uuid.UUID{a.ID, b.ID}, c[0].DependsOn)
		require.Empty(t, h.claimKind(t, "report"), "claimed once")
		h.finish(t, c[0], jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusSucceeded, bt)
	}},
}

// batchError is the Error of a batch without a callback of which n of m
// jobs did not succeed.
func batchError(n, m int) string { return fmt.Sprintf("%d of %d jobs did not succeed", n, m) }
