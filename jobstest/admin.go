package jobstest

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// failed creates a job, runs it and fails it with an error, returning the
// stored job.
func (h *harness) failed(t *testing.T, j *jobs.Job) *jobs.Job {
	t.Helper()
	h.create(t, j)
	c := h.claimQ(t, jobs.ClaimQuery{Owner: "w1", Kinds: []string{j.Kind}, Queues: []string{j.Queue}, Limit: 1, LeaseDuration: hour})
	require.Len(t, c, 1)
	require.Equal(t, j.ID, c[0].ID, "the job is the only pending one of its kind and queue")
	require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c[0].Lease(), Status: jobs.StatusFailed, Error: "boom"}))
	return h.get(t, j.ID)
}

// failAgain claims the pending job id (the only pending job of its kind)
// and fails it.
func (h *harness) failAgain(t *testing.T, id uuid.UUID) {
	t.Helper()
	j := h.get(t, id)
	c := h.claimQ(t, jobs.ClaimQuery{Owner: "w1", Kinds: []string{j.Kind}, Queues: []string{j.Queue}, Limit: 1, LeaseDuration: hour})
	require.Len(t, c, 1)
	require.Equal(t, id, c[0].ID)
	require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c[0].Lease(), Status: jobs.StatusFailed, Error: "again"}))
}

// sweep calls op with q until it returns no job, going on below the last
// ID of each batch, checks each batch is newest first and at most q's
// limit, and returns every ID in order.
func sweep(t *testing.T, op func(jobs.ListQuery) ([]uuid.UUID, error), q jobs.ListQuery) []uuid.UUID {
	t.Helper()
	var all []uuid.UUID
	for range 10_000 {
		got, err := op(q)
		require.NoError(t, err)
		require.NotNil(t, got, "an empty batch is an empty slice, not nil")
		require.LessOrEqual(t, len(got), max(q.Limit, 1), "a batch holds at most the limit")
		require.True(t, slices.IsSortedFunc(got, func(a, b uuid.UUID) int { return bytes.Compare(b[:], a[:]) }), "newest first: %v", got)
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
		q.Cursor = got[len(got)-1].String()
	}
	require.FailNow(t, "the sweep never ended")
	return nil
}

// newestFirst returns the IDs of js, newest first.
func newestFirst(js ...*jobs.Job) []uuid.UUID {
	out := ids(js)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(b[:], a[:]) })
	return out
}

// adminCases check the operations that operators run: retry, cancel and
// delete, of one job or of a filtered batch.
var adminCases = []testCase{
	{"RetryFailedKeepsHistory", func(t *testing.T, h *harness) {
		j := h.failed(t, &jobs.Job{Kind: "k", Payload: json.RawMessage(`{"a":1}`), MaxAttempts: 1, UniqueKey: "u",
			Priority: 7, Metadata: map[string]string{"request_id": "r1"}})
		require.Equal(t, jobs.StatusFailed, j.Status)
		before := time.Now()
		got, err := h.repo.Retry(t.Context(), j.ID)
		after := time.Now()
		require.NoError(t, err)
		requireUTC(t, got)
		requireSame(t, got, h.get(t, j.ID))
		require.Equal(t, jobs.StatusPending, got.Status)
		require.Zero(t, got.Attempt, "a fresh attempt budget")
		require.Equal(t, 1, got.MaxAttempts)
		require.Equal(t, "boom", got.Error, "the last error is kept")
		require.Len(t, got.Errors, 1, "the history is kept")
		require.Equal(t, "boom", got.Errors[0].Error)
		require.Equal(t, 1, got.Errors[0].Attempt)
		require.True(t, got.FinishedAt.IsZero() && got.StartedAt.IsZero())
		requireWithin(t, got.RunAt, before, after, "RunAt")
		require.Equal(t, j.UniqueKey, got.UniqueKey)
		require.Equal(t, j.Metadata, got.Metadata)
		require.Equal(t, j.Priority, got.Priority)
		require.JSONEq(t, string(j.Payload), string(got.Payload))
		require.True(t, j.CreatedAt.Equal(got.CreatedAt))

		again := h.claimOne(t)
		require.Equal(t, j.ID, again.ID)
		require.Equal(t, 1, again.Attempt, "the retried job runs within its budget again")
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: again.Lease(), Status: jobs.StatusFailed, Error: "twice"}))
		final := h.get(t, j.ID)
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Len(t, final.Errors, 2)
		require.Equal(t, []string{"boom", "twice"}, []string{final.Errors[0].Error, final.Errors[1].Error})
	}},
	{"RetryCanceledAndSucceededAgain", func(t *testing.T, h *harness) {
		j := h.inStatus(t, jobs.StatusCanceled)
		got, err := h.repo.Retry(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.False(t, got.CancelRequested, "the cancel request is cleared")
		c := h.claimOne(t)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`1`)}))
		require.Equal(t, jobs.StatusSucceeded, h.get(t, j.ID).Status, "a retried job's worker writes are not canceled")
	}},
	{"RetryClearsOutputAndCheckpoint", func(t *testing.T, h *harness) {
		j := h.running(t)
		h.save(t, j, `{"at":2}`, `"a"`, `"b"`)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusFailed,
			Error: "x", Output: raw(`"c"`), Progress: &jobs.Progress{Fraction: 0.5, Message: "half"}}))
		h.requireOutput(t, j.ID, `"a"`, `"b"`, `"c"`)
		got, err := h.repo.Retry(t.Context(), j.ID)
		require.NoError(t, err)
		require.Nil(t, got.Checkpoint)
		require.Zero(t, got.OutputSeq)
		require.Equal(t, jobs.Progress{}, got.Progress)
		require.Nil(t, got.Result)
		h.requireOutput(t, j.ID)
		c := h.claimOne(t)
		require.Nil(t, c.Checkpoint, "the new run starts from the beginning")
		h.save(t, c, `{"at":1}`, `"z"`)
		h.requireOutput(t, j.ID, `"z"`)
	}},
	{"RetryRefusesOtherStatuses", func(t *testing.T, h *harness) {
		// Running first: a claim takes the oldest pending job.
		for _, st := range []jobs.Status{jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusPending} {
			j := h.inStatus(t, st)
			want := h.get(t, j.ID)
			_, err := h.repo.Retry(t.Context(), j.ID)
			requireCode(t, err, jobs.ErrConflict, st)
			requireSame(t, want, h.get(t, j.ID))
		}
		_, err := h.repo.Retry(t.Context(), uuid.Must(uuid.NewV7()))
		requireCode(t, err, jobs.ErrNotFound)
	}},
	{"RetryManyFiltersAndSweeps", func(t *testing.T, h *harness) {
		a1 := h.failed(t, &jobs.Job{Kind: "a", MaxAttempts: 1})
		b1 := h.failed(t, &jobs.Job{Kind: "b", Queue: "q", MaxAttempts: 1})
		a2 := h.failed(t, &jobs.Job{Kind: "a", MaxAttempts: 1})
		c := h.inStatus(t, jobs.StatusCanceled)
		ok := h.inStatus(t, jobs.StatusSucceeded)
		pending := h.inStatus(t, jobs.StatusPending)
		retry := func(q jobs.ListQuery) ([]uuid.UUID, error) { return h.repo.RetryMany(t.Context(), q) }

		require.Empty(t, sweep(t, retry, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending, jobs.StatusSucceeded}}),
			"statuses that cannot be retried match nothing")
		require.Equal(t, newestFirst(b1), sweep(t, retry, jobs.ListQuery{Queue: "q"}))
		require.Equal(t, newestFirst(c), sweep(t, retry, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusCanceled}}))
		require.Equal(t, newestFirst(a1, a2), sweep(t, retry, jobs.ListQuery{Kind: "a", Limit: 1}), "one at a time, each once")
		for _, j := range []*jobs.Job{a1, b1, a2, c} {
			require.Equal(t, jobs.StatusPending, h.get(t, j.ID).Status)
		}
		require.Equal(t, jobs.StatusSucceeded, h.get(t, ok.ID).Status)
		requireSame(t, pending, h.get(t, pending.ID))
		require.Empty(t, sweep(t, retry, jobs.ListQuery{}), "nothing is left to retry")
	}},
	{"RetrySweepEndsWhenJobsFailAgain", func(t *testing.T, h *harness) {
		js := []*jobs.Job{h.failed(t, &jobs.Job{Kind: "k", MaxAttempts: 1}), h.failed(t, &jobs.Job{Kind: "k", MaxAttempts: 1})}
		q := jobs.ListQuery{Limit: 1}
		var seen []uuid.UUID
		for range 10 {
			got, err := h.repo.RetryMany(t.Context(), q)
			require.NoError(t, err)
			if len(got) == 0 {
				break
			}
			seen = append(seen, got...)
			// The retried job fails again at once, before the next batch.
			h.failAgain(t, got[0])
			q.Cursor = got[0].String()
		}
		require.Equal(t, newestFirst(js...), seen, "each job is retried once per sweep")
	}},
	{"CancelManyPendingAndRunning", func(t *testing.T, h *harness) {
		done := h.inStatus(t, jobs.StatusSucceeded)
		run := h.running(t)
		pend := h.create(t, job("k"))[0]
		before := time.Now()
		got, err := h.repo.CancelMany(t.Context(), jobs.ListQuery{})
		after := time.Now()
		require.NoError(t, err)
		require.Equal(t, newestFirst(run, pend), got)
		p := h.get(t, pend.ID)
		require.Equal(t, jobs.StatusCanceled, p.Status)
		requireWithin(t, p.FinishedAt, before, after, "FinishedAt")
		r := h.get(t, run.ID)
		require.Equal(t, jobs.StatusRunning, r.Status, "a running job runs until its worker stops")
		require.True(t, r.CancelRequested)
		require.Equal(t, run.LeaseToken, r.LeaseToken)
		reqs, err := h.repo.CancelRequests(t.Context(), "w1")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{run.ID}, reqs, "the worker sees the request as after RequestCancel")
		requireSame(t, done, h.get(t, done.ID))

		again, err := h.repo.CancelMany(t.Context(), jobs.ListQuery{})
		require.NoError(t, err)
		require.Empty(t, again, "jobs asked to cancel already are not counted again")
		err = h.repo.Finish(t.Context(), jobs.Completion{Lease: run.Lease(), Status: jobs.StatusSucceeded})
		requireCanceledInstead(t, err, run.ID)
		require.Equal(t, jobs.StatusCanceled, h.get(t, run.ID).Status)
	}},
	{"CancelManyFilters", func(t *testing.T, h *harness) {
		old := h.create(t, &jobs.Job{Kind: "a", Queue: "q"})[0]
		for !time.Now().After(old.CreatedAt.Add(2 * time.Microsecond)) { // a few µs, so the next job is newer
		}
		kindB := h.create(t, &jobs.Job{Kind: "b", Queue: "q"})[0]
		other := h.create(t, &jobs.Job{Kind: "a", Queue: "r"})[0]
		cancel := func(q jobs.ListQuery) ([]uuid.UUID, error) { return h.repo.CancelMany(t.Context(), q) }
		require.Empty(t, sweep(t, cancel, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}))
		require.Equal(t, newestFirst(old), sweep(t, cancel, jobs.ListQuery{Queue: "q", CreatedBefore: kindB.CreatedAt}))
		require.Equal(t, newestFirst(kindB), sweep(t, cancel, jobs.ListQuery{Kind: "b"}))
		require.Equal(t, jobs.StatusPending, h.get(t, other.ID).Status)
		require.Equal(t, newestFirst(other), sweep(t, cancel, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending}, Limit: 1}))
	}},
	{"DeleteFinishedWithOutput", func(t *testing.T, h *harness) {
		j := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "key"})[0]
		c := h.claimOne(t)
		h.save(t, c, `1`, `"item"`)
		h.finish(t, c, jobs.StatusSucceeded)
		require.NoError(t, h.repo.Delete(t.Context(), j.ID))
		_, err := h.repo.Get(t.Context(), j.ID)
		requireCode(t, err, jobs.ErrNotFound)
		_, err = h.repo.ReadOutput(t.Context(), j.ID, 0, 10)
		requireCode(t, err, jobs.ErrNotFound, "the output went with the job")
		requireCode(t, h.repo.Delete(t.Context(), j.ID), jobs.ErrNotFound)
		n := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "key"})[0]
		require.False(t, n.Duplicate, "the unique key is free again")
		require.NotEqual(t, j.ID, n.ID)
		h.requireOutput(t, n.ID)
	}},
	{"DeleteRefusesUnfinished", func(t *testing.T, h *harness) {
		for _, st := range []jobs.Status{jobs.StatusRunning, jobs.StatusPending} {
			j := h.inStatus(t, st)
			want := h.get(t, j.ID)
			requireCode(t, h.repo.Delete(t.Context(), j.ID), jobs.ErrConflict, st)
			requireSame(t, want, h.get(t, j.ID))
		}
	}},
	{"DeleteManySkipsUnfinished", func(t *testing.T, h *harness) {
		run := h.inStatus(t, jobs.StatusRunning)
		ok1 := h.inStatus(t, jobs.StatusSucceeded)
		bad := h.failed(t, &jobs.Job{Kind: "f", MaxAttempts: 1})
		c := h.running(t)
		h.save(t, c, `1`, `"x"`)
		h.finish(t, c, jobs.StatusCanceled)
		pend := h.inStatus(t, jobs.StatusPending)
		del := func(q jobs.ListQuery) ([]uuid.UUID, error) { return h.repo.DeleteMany(t.Context(), q) }
		require.Empty(t, sweep(t, del, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending, jobs.StatusRunning}}))
		require.Equal(t, newestFirst(bad), sweep(t, del, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}))
		require.Equal(t, newestFirst(ok1, c), sweep(t, del, jobs.ListQuery{Limit: 1}))
		_, err := h.repo.ReadOutput(t.Context(), c.ID, 0, 10)
		requireCode(t, err, jobs.ErrNotFound)
		require.ElementsMatch(t, ids([]*jobs.Job{pend, run}), ids(h.listAll(t, jobs.ListQuery{})))
	}},
	{"BadFiltersChangeNothing", func(t *testing.T, h *harness) {
		h.failed(t, &jobs.Job{Kind: "k", MaxAttempts: 1})
		h.create(t, job("k"))
		want := h.listAll(t, jobs.ListQuery{})
		for _, q := range []jobs.ListQuery{
			{Statuses: []jobs.Status{"weird"}},
			{Limit: 1001},
			{Limit: -1},
			{Cursor: "nope"},
			{CreatedBefore: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			{Kind: string([]byte{0xff})},
		} {
			_, err := h.repo.RetryMany(t.Context(), q)
			requireCode(t, err, jobs.ErrInvalidArgument, "retry %+v", q)
			_, err = h.repo.CancelMany(t.Context(), q)
			requireCode(t, err, jobs.ErrInvalidArgument, "cancel %+v", q)
			_, err = h.repo.DeleteMany(t.Context(), q)
			requireCode(t, err, jobs.ErrInvalidArgument, "delete %+v", q)
			_, err = h.repo.List(t.Context(), q)
			requireCode(t, err, jobs.ErrInvalidArgument, "list %+v", q)
		}
		got := h.listAll(t, jobs.ListQuery{})
		require.Len(t, got, len(want))
		for i := range want {
			requireSame(t, want[i], got[i])
		}
	}},
	{"ListCreatedBefore", func(t *testing.T, h *harness) {
		first := h.create(t, job("k"))[0]
		for !time.Now().After(first.CreatedAt.Add(2 * time.Microsecond)) {
		}
		second := h.create(t, job("k"))[0]
		require.Equal(t, []uuid.UUID{first.ID}, ids(h.listAll(t, jobs.ListQuery{CreatedBefore: second.CreatedAt})))
		require.Empty(t, h.listAll(t, jobs.ListQuery{CreatedBefore: first.CreatedAt}), "before, not at")
		require.Len(t, h.listAll(t, jobs.ListQuery{CreatedBefore: time.Now().Add(time.Hour)}), 2)
	}},
}
