package jobstest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// stateCases check that every write a job's status forbids is refused with
// the documented error and leaves the stored job exactly as it was.
var stateCases = []testCase{
	{"TerminalNeverChanges", func(t *testing.T, h *harness) {
		for name, end := range map[string]func(j *jobs.Job){
			"succeeded": func(j *jobs.Job) { h.finish(t, j, jobs.StatusSucceeded) },
			"failed":    func(j *jobs.Job) { h.finish(t, j, jobs.StatusFailed) },
			"canceled":  func(j *jobs.Job) { h.finish(t, j, jobs.StatusCanceled) },
			"canceled by release": func(j *jobs.Job) {
				_, err := h.repo.RequestCancel(t.Context(), j.ID)
				require.NoError(t, err)
				requireCanceledInstead(t, h.repo.Release(t.Context(), j.Lease()), j.ID)
			},
		} {
			claimed := h.running(t)
			end(claimed)
			j := h.get(t, claimed.ID)
			require.True(t, j.Status.Terminal(), name)
			require.False(t, j.FinishedAt.IsZero(), "%s sets FinishedAt", name)
			require.Empty(t, j.LeaseOwner, "%s clears the lease", name)
			require.Empty(t, j.LeaseToken, "%s clears the lease", name)
			require.True(t, j.LeaseExpiresAt.IsZero(), "%s clears the lease", name)
			requireUTC(t, j)
			requireForbiddenWrites(t, h, j, claimed.Lease())
		}
		canceled := h.inStatus(t, jobs.StatusCanceled)
		require.False(t, canceled.FinishedAt.IsZero())
		requireForbiddenWrites(t, h, canceled, jobs.Lease{JobID: canceled.ID})
	}},
	{"PendingRefusesWorkerWrites", func(t *testing.T, h *harness) {
		j := h.create(t, job("k"))[0]
		// Nobody holds a lease on a pending job, whatever token is named.
		for _, token := range []string{"", "made-up-token"} {
			l := jobs.Lease{JobID: j.ID, Token: token}
			requireLost(t, h.repo.Heartbeat(t.Context(), hour, l), j.ID)
			requireLost(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: l}), j.ID)
			requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: l, Status: jobs.StatusSucceeded}), j.ID)
			requireLost(t, h.repo.Release(t.Context(), l), j.ID)
		}
		requireSame(t, j, h.get(t, j.ID))
	}},
	{"WrongTokenRefused", func(t *testing.T, h *harness) {
		j := h.running(t)
		for _, token := range []string{"", "made-up-token", j.LeaseToken + "x"} {
			l := jobs.Lease{JobID: j.ID, Token: token}
			requireLost(t, h.repo.Heartbeat(t.Context(), hour, l), j.ID)
			requireLost(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: l}), j.ID)
			requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: l, Status: jobs.StatusSucceeded}), j.ID)
			requireLost(t, h.repo.Release(t.Context(), l), j.ID)
		}
		requireSame(t, j, h.get(t, j.ID))
	}},
	{"TokenOfOtherJobRefused", func(t *testing.T, h *harness) {
		h.createN(t, "k", 2)
		a, b := h.claimOne(t), h.claimOne(t)
		l := jobs.Lease{JobID: a.ID, Token: b.LeaseToken}
		requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: l, Status: jobs.StatusFailed}), a.ID)
		requireSame(t, a, h.get(t, a.ID))
		requireSame(t, b, h.get(t, b.ID))
	}},
	{"UnknownJobLeaseLost", func(t *testing.T, h *harness) {
		l := jobs.Lease{JobID: uuid.Must(uuid.NewV7()), Token: "t"}
		requireLost(t, h.repo.Heartbeat(t.Context(), hour, l), l.JobID)
		requireLost(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: l}), l.JobID)
		requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: l, Status: jobs.StatusFailed}), l.JobID)
		requireLost(t, h.repo.Release(t.Context(), l), l.JobID)
		require.Zero(t, h.total(t))
	}},
	{"FinishStatusRefused", func(t *testing.T, h *harness) {
		h.createN(t, "k", 2)
		a, b := h.claimOne(t), h.claimOne(t)
		for _, st := range []jobs.Status{jobs.StatusRunning, "", "done", "SUCCEEDED"} {
			err := h.repo.Finish(t.Context(),
				jobs.Completion{Lease: a.Lease(), Status: jobs.StatusSucceeded},
				jobs.Completion{Lease: b.Lease(), Status: st})
			requireCode(t, err, jobs.ErrInvalidArgument, "status %q", st)
		}
		requireSame(t, a, h.get(t, a.ID))
		requireSame(t, b, h.get(t, b.ID))
	}},
	{"EveryAllowedEdge", func(t *testing.T, h *harness) {
		// pending → running → pending (retry) → running → succeeded
		j := h.create(t, job("k"))[0]
		c := h.claimOne(t)
		require.Equal(t, jobs.StatusRunning, c.Status)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: c.Lease(), Status: jobs.StatusPending}))
		require.Equal(t, jobs.StatusPending, h.get(t, j.ID).Status)
		c = h.claimOne(t)
		h.finish(t, c, jobs.StatusSucceeded)
		require.Equal(t, jobs.StatusSucceeded, h.get(t, j.ID).Status)
		// pending → canceled, running → failed, running → canceled
		require.Equal(t, jobs.StatusCanceled, h.inStatus(t, jobs.StatusCanceled).Status)
		require.Equal(t, jobs.StatusFailed, h.inStatus(t, jobs.StatusFailed).Status)
		r := h.running(t)
		h.finish(t, r, jobs.StatusCanceled)
		require.Equal(t, jobs.StatusCanceled, h.get(t, r.ID).Status)
		// running → pending by release
		r = h.running(t)
		require.NoError(t, h.repo.Release(t.Context(), r.Lease()))
		require.Equal(t, jobs.StatusPending, h.get(t, r.ID).Status)
	}},
	{"FinishTwice", func(t *testing.T, h *harness) {
		j := h.running(t)
		h.finish(t, j, jobs.StatusSucceeded)
		done := h.get(t, j.ID)
		for _, st := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled, jobs.StatusPending} {
			requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: st, Error: "late"}), j.ID)
		}
		requireSame(t, done, h.get(t, j.ID))
	}},
	{"FinishSameJobTwiceInOneCall", func(t *testing.T, h *harness) {
		j := h.running(t)
		err := h.repo.Finish(t.Context(),
			jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: j.Lease(), Status: jobs.StatusFailed})
		requireLost(t, err, j.ID)
		require.Equal(t, jobs.StatusSucceeded, h.get(t, j.ID).Status, "the first completion wins")
	}},
}

// requireForbiddenWrites checks that no API call changes terminal job j:
// worker writes under its last lease l report ErrLeaseLost, RequestCancel
// reports ErrConflict naming the job, and claims and rescues pass it by.
func requireForbiddenWrites(t *testing.T, h *harness, j *jobs.Job, l jobs.Lease) {
	t.Helper()
	ctx := t.Context()
	requireLost(t, h.repo.Heartbeat(ctx, hour, l), j.ID)
	requireLost(t, h.repo.UpdateProgress(ctx, hour, jobs.ProgressUpdate{Lease: l, Progress: jobs.Progress{Fraction: 0.5},
		Checkpoint: json.RawMessage(`{"late":true}`), Output: raw(`"late"`)}), j.ID)
	requireLost(t, h.repo.Finish(ctx, jobs.Completion{Lease: l, Status: jobs.StatusPending}), j.ID)
	requireLost(t, h.repo.Finish(ctx, jobs.Completion{Lease: l, Status: jobs.StatusSucceeded, Output: raw(`"late"`)}), j.ID)
	requireLost(t, h.repo.Release(ctx, l), j.ID)
	_, err := h.repo.RequestCancel(ctx, j.ID)
	requireCode(t, err, jobs.ErrConflict)
	e, _ := errors.AsType[*jobs.Error](err)
	require.Equal(t, j.ID, e.JobID, "the conflict names the job")
	require.Empty(t, h.claimQ(t, jobs.ClaimQuery{Owner: "other", Limit: 10, LeaseDuration: time.Minute}))
	rescued, err := h.repo.RescueExpired(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, rescued)
	requireSame(t, j, h.get(t, j.ID))
}
