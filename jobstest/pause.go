package jobstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// inQueue returns a job of kind "k" in queue q.
func inQueue(q string) *jobs.Job { return &jobs.Job{Kind: "k", Queue: q} }

// pause pauses queue q and fails the case on error.
func (h *harness) pause(t *testing.T, q string) {
	t.Helper()
	require.NoError(t, h.repo.PauseQueue(t.Context(), q))
}

// resume resumes queue q and fails the case on error.
func (h *harness) resume(t *testing.T, q string) {
	t.Helper()
	require.NoError(t, h.repo.ResumeQueue(t.Context(), q))
}

var pauseCases = []testCase{
	{"HidesPendingJobsFromClaim", func(t *testing.T, h *harness) {
		a := h.create(t, inQueue("a"), inQueue("a"))
		b := h.create(t, inQueue("b"))[0]
		h.pause(t, "a")
		require.Equal(t, []uuid.UUID{b.ID}, ids(h.claim(t, 10)), "only the unpaused queue's job is claimed")
		require.Empty(t, h.claim(t, 10))
		for _, j := range a {
			requireSame(t, j, h.get(t, j.ID)) // still pending, unchanged
		}
		h.resume(t, "a")
		require.ElementsMatch(t, ids(a), ids(h.claim(t, 10)), "resumed: its jobs are claimed again")
	}},
	{"PerQueue", func(t *testing.T, h *harness) {
		a, b, d := inQueue("a"), inQueue("b"), inQueue("")
		h.create(t, a, b, d)
		h.pause(t, "a")
		q := func(queues ...string) jobs.ClaimQuery {
			return jobs.ClaimQuery{Owner: "w", Queues: queues, Limit: 10, LeaseDuration: hour}
		}
		require.Empty(t, h.claimQ(t, q("a")), "a claim of the paused queue alone gets nothing")
		require.Equal(t, []uuid.UUID{b.ID}, ids(h.claimQ(t, q("a", "b"))), "other queues are unaffected")
		require.Equal(t, []uuid.UUID{d.ID}, ids(h.claimQ(t, q())))
		require.Equal(t, jobs.StatusPending, h.get(t, a.ID).Status)
	}},
	{"HoldsLimitedClaims", func(t *testing.T, h *harness) {
		// A claim that declares limits takes another path on some
		// backends; a pause binds it too.
		a := h.create(t, inQueue("a"), inQueue("a"))
		b := h.create(t, inQueue("b"))[0]
		h.pause(t, "a")
		q := jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: hour,
			KindLimits: map[string]jobs.Limit{"k": {Running: 5, PerKey: 1}}, QueueLimits: map[string]jobs.Limit{"a": {Running: 5}}}
		require.Equal(t, []uuid.UUID{b.ID}, ids(h.claimQ(t, q)), "only the unpaused queue's job is claimed")
		require.Empty(t, h.claimQ(t, q))
		h.resume(t, "a")
		require.Len(t, h.claimQ(t, q), len(a), "resumed: its jobs are claimed within the limits")
	}},
	{"DefaultQueue", func(t *testing.T, h *harness) {
		h.pause(t, rules.DefaultQueue)
		j := h.create(t, inQueue(""))[0]
		require.Equal(t, rules.DefaultQueue, j.Queue)
		require.Empty(t, h.claim(t, 10), "a job created without a queue is in the default queue, paused")
		h.resume(t, rules.DefaultQueue)
		require.Equal(t, []uuid.UUID{j.ID}, ids(h.claim(t, 10)))
	}},
	{"BeforeAnyJob", func(t *testing.T, h *harness) {
		h.pause(t, "later")
		require.Equal(t, []string{"later"}, h.stats(t).Paused, "a queue without jobs can be paused")
		j := h.create(t, inQueue("later"))[0]
		require.Empty(t, h.claim(t, 10), "a job created in a paused queue waits")
		require.Equal(t, jobs.StatusPending, h.get(t, j.ID).Status)
		h.resume(t, "later")
		require.Equal(t, []uuid.UUID{j.ID}, ids(h.claim(t, 10)))
	}},
	{"Idempotent", func(t *testing.T, h *harness) {
		j := h.create(t, inQueue("a"))[0]
		h.resume(t, "a") // never paused: a no-op
		h.resume(t, "never-seen")
		require.Empty(t, h.stats(t).Paused)
		h.pause(t, "a")
		h.pause(t, "a")
		require.Equal(t, []string{"a"}, h.stats(t).Paused, "paused once, listed once")
		require.Empty(t, h.claim(t, 10))
		h.resume(t, "a") // one resume ends any number of pauses
		require.Empty(t, h.stats(t).Paused)
		h.resume(t, "a")
		require.Equal(t, []uuid.UUID{j.ID}, ids(h.claim(t, 10)))
		h.pause(t, "a") // and a queue can be paused again
		require.Equal(t, []string{"a"}, h.stats(t).Paused)
	}},
	{"StatsListsPausedQueues", func(t *testing.T, h *harness) {
		st := h.stats(t)
		require.NotNil(t, st.Paused, "an empty slice, not nil, when no queue is paused")
		require.Empty(t, st.Paused)
		h.create(t, inQueue("b"), inQueue("b"), inQueue("c"))
		for _, q := range []string{"b", "Z", "a", "é"} { // "a" and "Z" and "é" have no jobs
			h.pause(t, q)
		}
		st = h.stats(t)
		require.Equal(t, []string{"Z", "a", "b", "é"}, st.Paused, "sorted by byte order, with or without jobs")
		require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 2}, nonZero(st.ByQueue["b"]), "counts are unchanged by a pause")
		require.Equal(t, 3, st.Total)
		require.NotContains(t, st.ByQueue, "a", "pausing a queue creates no job")
		h.resume(t, "b")
		require.Equal(t, []string{"Z", "a", "é"}, h.stats(t).Paused)
	}},
	{"StatsIsACopy", func(t *testing.T, h *harness) {
		h.pause(t, "a")
		st := h.stats(t)
		st.Paused[0] = "changed"
		require.Equal(t, []string{"a"}, h.stats(t).Paused, "changing a returned Stats changes nothing stored")
	}},
	{"MalformedNamesWriteNothing", func(t *testing.T, h *harness) {
		bad := map[string]string{
			"empty":    "",
			"too long": strings.Repeat("q", rules.MaxNameLength+1),
			"not UTF8": "q\xff",
			"NUL":      "q\x00",
		}
		for what, q := range bad {
			requireCode(t, h.repo.PauseQueue(t.Context(), q), jobs.ErrInvalidArgument, "PauseQueue: %s", what)
			requireCode(t, h.repo.ResumeQueue(t.Context(), q), jobs.ErrInvalidArgument, "ResumeQueue: %s", what)
		}
		require.Empty(t, h.stats(t).Paused, "nothing was paused")
		h.pause(t, strings.Repeat("q", rules.MaxNameLength)) // the longest name is fine
		require.Len(t, h.stats(t).Paused, 1)
	}},
	{"RunningJobsGoOn", func(t *testing.T, h *harness) {
		h.create(t, inQueue("a"), inQueue("a"), inQueue("a"), inQueue("a"))
		run := h.claim(t, 4)
		require.Len(t, run, 4)
		h.pause(t, "a")
		ctx := t.Context()
		require.NoError(t, h.repo.Heartbeat(ctx, hour, run[0].Lease()), "a running job of a paused queue keeps its lease")
		require.NoError(t, h.repo.UpdateProgress(ctx, hour, jobs.ProgressUpdate{Lease: run[0].Lease(), Progress: jobs.Progress{Fraction: 0.5}}))
		h.finish(t, run[0], jobs.StatusSucceeded)
		require.Equal(t, jobs.StatusSucceeded, h.get(t, run[0].ID).Status, "and finishes")
		// An attempt that retries, a released job and a canceled one.
		require.NoError(t, h.repo.Finish(ctx, jobs.Completion{Lease: run[1].Lease(), Status: jobs.StatusPending, Error: "again"}))
		require.NoError(t, h.repo.Release(ctx, run[2].Lease()))
		_, err := h.repo.RequestCancel(ctx, run[3].ID)
		require.NoError(t, err)
		require.NoError(t, h.repo.Heartbeat(ctx, hour, run[3].Lease()))
		asked, err := h.repo.CancelRequests(ctx, "w1")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{run[3].ID}, asked, "cancel requests reach the worker")
		require.Equal(t, jobs.StatusPending, h.get(t, run[1].ID).Status)
		require.Equal(t, jobs.StatusPending, h.get(t, run[2].ID).Status)
		require.Empty(t, h.claim(t, 10), "jobs back to pending wait for the resume")
		h.resume(t, "a")
		require.ElementsMatch(t, []uuid.UUID{run[1].ID, run[2].ID}, ids(h.claim(t, 10)))
	}},
	{"RescuedJobsWait", func(t *testing.T, h *harness) {
		h.create(t, inQueue("a"))
		got := h.claimQ(t, jobs.ClaimQuery{Owner: "w0", Limit: 1, LeaseDuration: time.Millisecond})
		require.Len(t, got, 1)
		h.pause(t, "a")
		waitExpired(t, got...)
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Equal(t, ids(got), ids(rescued), "the rescuer works in a paused queue")
		require.Equal(t, jobs.StatusPending, h.get(t, got[0].ID).Status)
		require.Empty(t, h.claim(t, 10), "a rescued job of a paused queue waits for the resume")
	}},
	{"CancelPending", func(t *testing.T, h *harness) {
		j := h.create(t, inQueue("a"))[0]
		h.pause(t, "a")
		got, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, got.Status, "a pending job of a paused queue can be canceled")
		h.resume(t, "a")
		require.Empty(t, h.claim(t, 10))
	}},
	{"EndedContextWritesNothing", func(t *testing.T, h *harness) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for op, err := range map[string]error{"PauseQueue": h.repo.PauseQueue(ctx, "a"), "ResumeQueue": h.repo.ResumeQueue(ctx, "a")} {
			require.True(t, errors.Is(err, context.Canceled), "%s: %v should match context.Canceled", op, err)
			_, typed := errors.AsType[*jobs.Error](err)
			require.True(t, typed, "%s: error %q (%T) is not a *jobs.Error", op, err, err)
		}
		require.Empty(t, h.stats(t).Paused)
	}},
	{"Closed", func(t *testing.T, h *harness) {
		require.NoError(t, h.repo.Close())
		requireCode(t, h.repo.PauseQueue(t.Context(), "a"), jobs.ErrClosed, "PauseQueue")
		requireCode(t, h.repo.ResumeQueue(t.Context(), "a"), jobs.ErrClosed, "ResumeQueue")
	}},
}
