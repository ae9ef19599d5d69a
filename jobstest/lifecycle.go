package jobstest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

var pruneCases = []testCase{
	{"OnlyFinishedBefore", func(t *testing.T, h *harness) {
		running := h.running(t)
		h.createN(t, "k", 3)
		done := h.claim(t, 3)
		require.Len(t, done, 3)
		pending := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "pending"})[0]
		beforeFinish := time.Now().Add(-slack)
		h.finish(t, done[0], jobs.StatusSucceeded)
		h.finish(t, done[1], jobs.StatusFailed)
		h.finish(t, done[2], jobs.StatusCanceled)
		canceled := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "canceled"})[0]
		_, err := h.repo.RequestCancel(t.Context(), canceled.ID)
		require.NoError(t, err)

		n, err := h.repo.Prune(t.Context(), beforeFinish)
		require.NoError(t, err)
		require.Zero(t, n, "jobs that finished after the cutoff stay")
		require.Equal(t, 6, h.total(t))

		n, err = h.repo.Prune(t.Context(), time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 4, n)
		for _, j := range append(done, canceled) {
			_, err := h.repo.Get(t.Context(), j.ID)
			requireCode(t, err, jobs.ErrNotFound)
		}
		require.Equal(t, jobs.StatusPending, h.get(t, pending.ID).Status)
		require.Equal(t, jobs.StatusRunning, h.get(t, running.ID).Status)
		require.NoError(t, h.repo.Heartbeat(t.Context(), hour, running.Lease()), "a running job's lease survives a prune")
		requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: done[0].Lease(), Status: jobs.StatusFailed}), done[0].ID)

		again := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "canceled"})[0]
		require.False(t, again.Duplicate, "a pruned job's unique key is free again")
		require.NotEqual(t, canceled.ID, again.ID)
		dup := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "pending"})[0]
		require.True(t, dup.Duplicate)

		n, err = h.repo.Prune(t.Context(), time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Zero(t, n)
	}},
	{"MoreThanOneBatch", func(t *testing.T, h *harness) {
		n := 1007 // more than one of jobsbun's 1,000-row prune batches
		for i := 0; i < n; i += 1000 {
			h.createN(t, "k", min(1000, n-i))
		}
		h.create(t, job("keep"))
		var cs []jobs.Completion
		for len(cs) < n {
			for _, j := range h.claimQ(t, jobs.ClaimQuery{Owner: "w", Kinds: []string{"k"}, Limit: rules.MaxClaimLimit, LeaseDuration: hour}) {
				cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
			}
		}
		require.NoError(t, h.repo.Finish(t.Context(), cs...))
		pruned, err := h.repo.Prune(t.Context(), time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, n, pruned)
		require.Equal(t, 1, h.total(t))
	}},
}

var txCases = []testCase{
	{"NotATxRefused", func(t *testing.T, h *harness) {
		// Nothing that is not the implementation's transaction may turn
		// into a write outside the caller's transaction.
		for _, tx := range []any{nil, "tx", 42, h.repo, struct{}{}} {
			requireCode(t, h.repo.CreateTx(t.Context(), tx, job("k")), jobs.ErrInvalidArgument)
		}
		require.Zero(t, h.total(t))
	}},
	{"Commit", func(t *testing.T, h *harness) {
		tx := h.beginTx(t)
		js := jobsOf("k", 3)
		require.NoError(t, h.repo.CreateTx(t.Context(), tx.Value, js...))
		for _, j := range js {
			require.NotEqual(t, uuid.Nil, j.ID)
		}
		require.NoError(t, tx.Commit())
		for _, j := range js {
			requireSame(t, j, h.get(t, j.ID))
		}
		require.Len(t, h.claim(t, 10), 3)
	}},
	{"Rollback", func(t *testing.T, h *harness) {
		tx := h.beginTx(t)
		j := job("k")
		require.NoError(t, h.repo.CreateTx(t.Context(), tx.Value, j))
		require.NoError(t, tx.Rollback())
		_, err := h.repo.Get(t.Context(), j.ID)
		requireCode(t, err, jobs.ErrNotFound)
		require.Zero(t, h.total(t))
		require.Empty(t, h.claim(t, 10))
	}},
	{"InvalidInTx", func(t *testing.T, h *harness) {
		tx := h.beginTx(t)
		err := h.repo.CreateTx(t.Context(), tx.Value, job("k"), &jobs.Job{Kind: "k", Payload: json.RawMessage(`{`)})
		requireCode(t, err, jobs.ErrInvalidArgument)
		require.NoError(t, tx.Commit(), "a refused CreateTx leaves the transaction usable")
		require.Zero(t, h.total(t))
	}},
	{"UniqueKeyInTx", func(t *testing.T, h *harness) {
		first := h.create(t, &jobs.Job{Kind: "k", UniqueKey: "u"})[0]
		tx := h.beginTx(t)
		j := &jobs.Job{Kind: "k", UniqueKey: "u"}
		require.NoError(t, h.repo.CreateTx(t.Context(), tx.Value, j))
		require.NoError(t, tx.Commit())
		require.True(t, j.Duplicate)
		require.Equal(t, first.ID, j.ID)
		require.Equal(t, 1, h.total(t))
	}},
}

// beginTx starts a transaction through the WithTx option, or skips the case.
func (h *harness) beginTx(t *testing.T) Tx {
	t.Helper()
	if h.cfg.beginTx == nil {
		t.Skip("the repository does not support CreateTx (no jobstest.WithTx option)")
	}
	tx := h.cfg.beginTx(t, h.repo)
	t.Cleanup(func() { _ = tx.Rollback() }) // after Commit: an error, ignored
	return tx
}

var lifecycleCases = []testCase{
	{"Close", func(t *testing.T, h *harness) {
		j := h.running(t)
		require.NoError(t, h.repo.Close())
		require.NoError(t, h.repo.Close(), "Close is idempotent")
		ctx, l := t.Context(), j.Lease()
		requireCode(t, h.repo.Create(ctx, job("k")), jobs.ErrClosed, "Create")
		_, err := h.repo.Get(ctx, j.ID)
		requireCode(t, err, jobs.ErrClosed, "Get")
		_, err = h.repo.List(ctx, jobs.ListQuery{})
		requireCode(t, err, jobs.ErrClosed, "List")
		_, err = h.repo.Stats(ctx)
		requireCode(t, err, jobs.ErrClosed, "Stats")
		_, err = h.repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: hour})
		requireCode(t, err, jobs.ErrClosed, "Claim")
		requireCode(t, h.repo.UpdateProgress(ctx, hour, jobs.ProgressUpdate{Lease: l}), jobs.ErrClosed, "UpdateProgress")
		requireCode(t, h.repo.Heartbeat(ctx, hour, l), jobs.ErrClosed, "Heartbeat")
		requireCode(t, h.repo.Finish(ctx, jobs.Completion{Lease: l, Status: jobs.StatusSucceeded}), jobs.ErrClosed, "Finish")
		requireCode(t, h.repo.Release(ctx, l), jobs.ErrClosed, "Release")
		_, err = h.repo.RequestCancel(ctx, j.ID)
		requireCode(t, err, jobs.ErrClosed, "RequestCancel")
		_, err = h.repo.CancelRequests(ctx, "w1")
		requireCode(t, err, jobs.ErrClosed, "CancelRequests")
		_, err = h.repo.RescueExpired(ctx, 1)
		requireCode(t, err, jobs.ErrClosed, "RescueExpired")
		_, err = h.repo.Prune(ctx, time.Now())
		requireCode(t, err, jobs.ErrClosed, "Prune")
		_, err = h.repo.ReadOutput(ctx, j.ID, 0, 10)
		requireCode(t, err, jobs.ErrClosed, "ReadOutput")
	}},
	{"PoisonRow", func(t *testing.T, h *harness) {
		if h.cfg.corrupt == nil {
			t.Skip("the repository cannot corrupt a row (no jobstest.WithCorruptRow option)")
		}
		js := h.createN(t, "k", 100)
		bad := js[37]
		h.cfg.corrupt(t, h.repo, bad.ID)
		claimed := map[uuid.UUID]bool{}
		for range 10 {
			got, err := h.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Limit: 100, LeaseDuration: hour})
			require.NoError(t, err, "a corrupt row does not break the claim of the others")
			if len(got) == 0 {
				break
			}
			for _, j := range got {
				require.False(t, claimed[j.ID], "claimed twice")
				claimed[j.ID] = true
			}
		}
		for _, j := range js {
			if j.ID != bad.ID {
				require.True(t, claimed[j.ID], "job %s was not claimed", j.ID)
			}
		}
		st, err := h.repo.Stats(t.Context())
		require.NoError(t, err)
		if claimed[bad.ID] {
			return // the repository could read the damaged row and handed it out
		}
		// A row the repository cannot read is not left running under a
		// lease nobody holds: it failed at once, in or right after the
		// claim, without waiting for a lease to expire.
		require.Equal(t, len(claimed), st.ByStatus[jobs.StatusRunning], "the damaged job is not left running")
		require.Equal(t, 1, st.ByStatus[jobs.StatusFailed], "the damaged job failed at once")
		if j, err := h.repo.Get(t.Context(), bad.ID); err == nil {
			require.Equal(t, jobs.StatusFailed, j.Status)
			require.NotEmpty(t, j.Error, "the error says why")
			require.Empty(t, j.LeaseToken)
		}
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Empty(t, rescued)
	}},
}
