package jobstest

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// batchRetryCases retry batches (jobs.JobRepository.Retry of a batch):
// with the jobs of theirs that did not succeed, which they wait for again,
// batches of batches included, and the retries refused.
var batchRetryCases = []testCase{
	{"RetryWithJobs", func(t *testing.T, h *harness) {
		// A batch whose callback failed is retried with its jobs that did
		// not succeed: it waits for them again, its fraction counting the
		// one that succeeded, and its callback runs once they have ended.
		a, b, c := job("a"), job("b"), job("c")
		bt := batchOf("report", a, b, c)
		h.create(t, a, b, c, bt)
		h.end(t, a, jobs.StatusSucceeded)
		h.end(t, b, jobs.StatusFailed)
		_, err := h.repo.RequestCancel(t.Context(), c.ID)
		require.NoError(t, err)
		h.end(t, bt, jobs.StatusFailed)
		failed := h.get(t, bt.ID)

		n, err := h.repo.RetryMany(t.Context(), jobs.ListQuery{Kind: "report"})
		require.NoError(t, err)
		require.Empty(t, n, "RetryMany skips batches")
		h.requireStatus(t, jobs.StatusFailed, bt)

		got, err := h.repo.Retry(t.Context(), bt.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusWaiting, got.Status)
		require.InDelta(t, 1.0/3, got.Progress.Fraction, fractionDelta)
		require.Zero(t, got.Attempt)
		require.True(t, got.FinishedAt.IsZero())
		require.Equal(t, failed.Error, got.Error, "the error stays, as for any retry")
		require.Equal(t, []uuid.UUID{a.ID, b.ID, c.ID}, got.DependsOn)
		requireSame(t, got, h.get(t, bt.ID))
		h.requireStatus(t, jobs.StatusSucceeded, a)
		h.requireStatus(t, jobs.StatusPending, b, c)
		require.Zero(t, h.get(t, b.ID).Attempt, "its jobs are retried as Retry does")
		require.Empty(t, h.claimKind(t, "report"), "the batch waits for its jobs")

		h.end(t, b, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusWaiting, bt)
		h.requireFraction(t, bt, 2.0/3)
		h.end(t, c, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusPending, bt)
		h.requireFraction(t, bt, 1)
		cb := h.claimKind(t, "report")
		require.Equal(t, []uuid.UUID{bt.ID}, ids(cb), "the callback runs again, once")
		require.Equal(t, 1, cb[0].Attempt)
		h.finish(t, cb[0], jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusSucceeded, bt)

		// A batch whose jobs all succeeded: its callback runs again.
		d := job("d")
		bt2 := batchOf("report2", d)
		h.create(t, d, bt2)
		h.end(t, d, jobs.StatusSucceeded)
		h.end(t, bt2, jobs.StatusFailed)
		got, err = h.repo.Retry(t.Context(), bt2.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusPending, got.Status)
		h.requireStatus(t, jobs.StatusSucceeded, d)
		require.Equal(t, []uuid.UUID{bt2.ID}, ids(h.claimKind(t, "report2")))
	}},
	{"RetryWithoutCallback", func(t *testing.T, h *harness) {
		// A batch of kind BatchKind that failed waits again, and ends by
		// itself as at first.
		a, b := job("a"), job("b")
		bt := batchOf(jobs.BatchKind, a, b)
		h.create(t, a, b, bt)
		h.end(t, a, jobs.StatusFailed)
		h.end(t, b, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusFailed, bt)
		got, err := h.repo.Retry(t.Context(), bt.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusWaiting, got.Status)
		require.InDelta(t, 0.5, got.Progress.Fraction, fractionDelta)
		h.requireStatus(t, jobs.StatusPending, a)
		h.end(t, a, jobs.StatusFailed)
		got = h.get(t, bt.ID)
		require.Equal(t, jobs.StatusFailed, got.Status)
		require.Equal(t, batchError(1, 2), got.Error)
		require.InDelta(t, 1, got.Progress.Fraction, fractionDelta)

		_, err = h.repo.Retry(t.Context(), bt.ID)
		require.NoError(t, err)
		h.end(t, a, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusSucceeded, bt)
		require.Empty(t, h.claimKind(t, jobs.BatchKind), "it is never claimed")
	}},
	{"RetryNested", func(t *testing.T, h *harness) {
		// A batch among the jobs to retry is retried with its own jobs;
		// the outer batch's fraction counts its fraction.
		x, y, z := job("x"), job("y"), job("z")
		inner := batchOf("inner", x, y)
		outer := batchOf("report", inner, z)
		h.create(t, x, y, inner, z, outer)
		h.end(t, x, jobs.StatusFailed)
		h.end(t, y, jobs.StatusSucceeded)
		h.end(t, inner, jobs.StatusFailed)
		h.end(t, z, jobs.StatusFailed)
		h.end(t, outer, jobs.StatusFailed)

		got, err := h.repo.Retry(t.Context(), outer.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusWaiting, got.Status)
		require.InDelta(t, 0.5/2, got.Progress.Fraction, fractionDelta)
		h.requireStatus(t, jobs.StatusWaiting, inner)
		h.requireFraction(t, inner, 0.5)
		h.requireStatus(t, jobs.StatusPending, x, z)
		h.requireStatus(t, jobs.StatusSucceeded, y)

		h.end(t, x, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, inner)
		h.requireFraction(t, outer, 1.0/2)
		h.end(t, inner, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusWaiting, outer)
		h.end(t, z, jobs.StatusSucceeded)
		h.requireStatus(t, jobs.StatusPending, outer)
		require.Equal(t, []uuid.UUID{outer.ID}, ids(h.claimKind(t, "report")))
	}},
	{"RetryRefused", func(t *testing.T, h *harness) {
		// While a job of the batch has not ended, and for a batch without
		// a callback that has nothing to retry, Retry is ErrConflict and
		// changes nothing.
		run, p := job("run"), job("p")
		bt := batchOf(jobs.BatchKind, run, p)
		h.create(t, run, p, bt)
		running := h.claimKind(t, "run")
		require.Len(t, running, 1)
		_, err := h.repo.RequestCancel(t.Context(), bt.ID)
		require.NoError(t, err)
		canceled := h.get(t, bt.ID)
		_, err = h.repo.Retry(t.Context(), bt.ID)
		requireCode(t, err, jobs.ErrConflict)
		require.Contains(t, err.Error(), run.ID.String(), "the error names the job that has not ended")
		requireSame(t, canceled, h.get(t, bt.ID))
		h.requireStatus(t, jobs.StatusCanceled, p)
		h.requireStatus(t, jobs.StatusRunning, run)
		requireCanceledInstead(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: running[0].Lease(), Status: jobs.StatusSucceeded}), run.ID)
		_, err = h.repo.Retry(t.Context(), bt.ID)
		require.NoError(t, err, "once its jobs have ended")
		h.requireStatus(t, jobs.StatusPending, run, p)

		// Nothing to retry: the inner batch succeeded after its own retry.
		x := job("x")
		inner := batchOf("inner", x)
		outer := batchOf(jobs.BatchKind, inner)
		h.create(t, x, inner, outer)
		h.end(t, x, jobs.StatusFailed)
		h.end(t, inner, jobs.StatusFailed)
		h.requireStatus(t, jobs.StatusFailed, outer)
		_, err = h.repo.Retry(t.Context(), inner.ID)
		require.NoError(t, err)
		h.requireStatus(t, jobs.StatusWaiting, inner)
		_, err = h.repo.Retry(t.Context(), outer.ID)
		requireCode(t, err, jobs.ErrConflict, "a job of the batch (the inner batch) has not ended")
		h.end(t, x, jobs.StatusSucceeded)
		h.end(t, inner, jobs.StatusSucceeded)
		failed := h.get(t, outer.ID)
		require.Equal(t, jobs.StatusFailed, failed.Status)
		_, err = h.repo.Retry(t.Context(), outer.ID)
		requireCode(t, err, jobs.ErrConflict)
		requireSame(t, failed, h.get(t, outer.ID))
	}},
}
