package jobstest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

var cancelCases = []testCase{
	{"PendingAtOnce", func(t *testing.T, h *harness) {
		j := h.create(t, job("k"))[0]
		before := time.Now()
		got, err := h.repo.RequestCancel(t.Context(), j.ID)
		after := time.Now()
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		requireWithin(t, got.FinishedAt, before, after, "FinishedAt")
		requireUTC(t, got)
		requireSame(t, got, h.get(t, j.ID))
		require.Empty(t, h.claim(t, 10), "a canceled job is never claimed")
	}},
	{"ScheduledAtOnce", func(t *testing.T, h *harness) {
		j := h.create(t, &jobs.Job{Kind: "k", RunAt: time.Now().Add(50 * time.Millisecond)})[0]
		got, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		waitUntil(t, j.RunAt)
		require.Empty(t, h.claim(t, 10), "a canceled job is never claimed")
	}},
	{"RunningIsRequested", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		mine := h.claimQ(t, jobs.ClaimQuery{Owner: "me", Limit: 2, LeaseDuration: hour})
		theirs := h.claimQ(t, jobs.ClaimQuery{Owner: "them", Limit: 1, LeaseDuration: hour})
		require.Len(t, mine, 2)
		require.Len(t, theirs, 1)
		none, err := h.repo.CancelRequests(t.Context(), "me")
		require.NoError(t, err)
		require.Empty(t, none)

		got, err := h.repo.RequestCancel(t.Context(), mine[0].ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusRunning, got.Status, "a running job keeps running until its worker stops")
		require.True(t, got.CancelRequested)
		require.Equal(t, mine[0].LeaseToken, got.LeaseToken, "the lease stays with the worker")
		requireSame(t, got, h.get(t, mine[0].ID))
		_, err = h.repo.RequestCancel(t.Context(), theirs[0].ID)
		require.NoError(t, err)

		reqs, err := h.repo.CancelRequests(t.Context(), "me")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{mine[0].ID}, reqs, "only the owner's jobs with a cancel request")
		reqs, err = h.repo.CancelRequests(t.Context(), "nobody")
		require.NoError(t, err)
		require.Empty(t, reqs)

		require.NoError(t, h.repo.Heartbeat(t.Context(), hour, mine[0].Lease()), "the worker keeps its lease")
		h.finish(t, mine[0], jobs.StatusCanceled)
		require.Equal(t, jobs.StatusCanceled, h.get(t, mine[0].ID).Status)
		reqs, err = h.repo.CancelRequests(t.Context(), "me")
		require.NoError(t, err)
		require.Empty(t, reqs, "finished jobs are no longer reported")
	}},
	{"RequestedTwiceIsNoop", func(t *testing.T, h *harness) {
		j := h.running(t)
		first, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		second, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		requireSame(t, first, second)
		requireSame(t, first, h.get(t, j.ID))
	}},
	{"RequestWinsOverALaterSuccess", func(t *testing.T, h *harness) {
		// A worker that finishes after the request (it had not seen it yet)
		// still ends the job canceled: a nil RequestCancel means canceled.
		j := h.running(t)
		_, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		err = h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`1`)})
		requireCanceledInstead(t, err, j.ID)
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusCanceled, got.Status)
		require.Empty(t, got.Result)
	}},
	{"TerminalConflict", func(t *testing.T, h *harness) {
		for _, st := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled} {
			j := h.inStatus(t, st)
			_, err := h.repo.RequestCancel(t.Context(), j.ID)
			requireCode(t, err, jobs.ErrConflict, "cancel a %s job", st)
			requireSame(t, j, h.get(t, j.ID))
		}
	}},
}

// waitUntil waits until the wall clock is past tm.
func waitUntil(t *testing.T, tm time.Time) {
	t.Helper()
	require.Eventually(t, func() bool { return time.Now().After(tm.Add(slack)) },
		10*time.Second, time.Millisecond)
}
