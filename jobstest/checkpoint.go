package jobstest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// save stores a checkpoint and the output items it covers under j's lease
// and fails the case on error.
func (h *harness) save(t *testing.T, j *jobs.Job, checkpoint string, items ...string) {
	t.Helper()
	require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
		Lease: j.Lease(), Checkpoint: json.RawMessage(checkpoint), Output: raw(items...)}))
}

// requireCheckpoint fails unless j holds the checkpoint want (compared as
// JSON documents), or none when want is "".
func requireCheckpoint(t *testing.T, want string, j *jobs.Job, msgAndArgs ...any) {
	t.Helper()
	if want == "" {
		require.Nil(t, j.Checkpoint, msgAndArgs...)
		return
	}
	require.NotNil(t, j.Checkpoint, msgAndArgs...)
	require.JSONEq(t, want, string(j.Checkpoint), msgAndArgs...)
}

// checkpointCases check that a checkpoint saved by a running attempt is
// stored, fenced by the lease like every attempt write, and handed to the
// next attempt of the job however the attempt ended.
var checkpointCases = []testCase{
	{"StoredAndVisibleInGet", func(t *testing.T, h *harness) {
		j := h.running(t)
		require.Nil(t, j.Checkpoint, "a new job has no checkpoint")
		require.Zero(t, j.OutputSeq, "a new job has no output")
		p := jobs.Progress{Fraction: 0.5, Message: "page 3"}
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: j.Lease(), Progress: p, Checkpoint: json.RawMessage(`{"page": 3, "cursor": "abc"}`)}))
		got := h.get(t, j.ID)
		requireCheckpoint(t, `{"cursor":"abc","page":3}`, got)
		require.Equal(t, p, got.Progress, "the progress of the update is stored with it")
		require.Zero(t, got.OutputSeq, "a checkpoint without items appends nothing")
		h.requireOutput(t, j.ID)
		require.Equal(t, jobs.StatusRunning, got.Status)
	}},
	{"NilKeepsStored", func(t *testing.T, h *harness) {
		// A nil Checkpoint is a progress-only update; a non-nil one
		// replaces the stored checkpoint as a whole (no merge of objects).
		j := h.running(t)
		h.save(t, j, `{"a":1,"b":2}`)
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{
			Lease: j.Lease(), Progress: jobs.Progress{Fraction: 0.7}}))
		got := h.get(t, j.ID)
		requireCheckpoint(t, `{"a":1,"b":2}`, got, "a nil checkpoint leaves the stored one")
		require.Equal(t, 0.7, got.Progress.Fraction)
		h.save(t, j, `{"a":2}`)
		requireCheckpoint(t, `{"a":2}`, h.get(t, j.ID), "a new checkpoint replaces the old one")
	}},
	{"KeptForRetry", func(t *testing.T, h *harness) {
		j := h.running(t)
		h.save(t, j, `{"step":4}`)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusPending, Error: "again"}))
		got := h.get(t, j.ID)
		require.Equal(t, jobs.StatusPending, got.Status)
		requireCheckpoint(t, `{"step":4}`, got)
		again := h.claimOne(t)
		require.Equal(t, j.ID, again.ID)
		require.Equal(t, 2, again.Attempt)
		requireCheckpoint(t, `{"step":4}`, again, "the retry starts from the checkpoint")
	}},
	{"KeptForRescue", func(t *testing.T, h *harness) {
		j := h.running(t)
		// The update renews the lease for a millisecond only, so that it
		// expires right after the checkpoint was saved.
		require.NoError(t, h.repo.UpdateProgress(t.Context(), time.Millisecond, jobs.ProgressUpdate{
			Lease: j.Lease(), Checkpoint: json.RawMessage(`{"step":5}`)}))
		waitExpired(t, h.get(t, j.ID))
		rescued, err := h.repo.RescueExpired(t.Context(), 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1)
		requireCheckpoint(t, `{"step":5}`, rescued[0], "RescueExpired returns the job with its checkpoint")
		requireCheckpoint(t, `{"step":5}`, h.get(t, j.ID))
		again := h.claimOne(t)
		require.Equal(t, j.ID, again.ID)
		require.Equal(t, 2, again.Attempt)
		requireCheckpoint(t, `{"step":5}`, again, "the attempt after a crash starts from the checkpoint")
	}},
	{"KeptForRelease", func(t *testing.T, h *harness) {
		j := h.running(t)
		h.save(t, j, `{"step":6}`)
		require.NoError(t, h.repo.Release(t.Context(), j.Lease()))
		requireCheckpoint(t, `{"step":6}`, h.get(t, j.ID))
		again := h.claimOne(t)
		require.Equal(t, j.ID, again.ID)
		requireCheckpoint(t, `{"step":6}`, again, "the attempt after a shutdown starts from the checkpoint")
	}},
	{"KeptWhenFinished", func(t *testing.T, h *harness) {
		// Checkpoint is what the latest attempt saved, also once the job
		// has ended.
		for _, st := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled} {
			j := h.running(t)
			h.save(t, j, `{"end":true}`)
			h.finish(t, j, st)
			requireCheckpoint(t, `{"end":true}`, h.get(t, j.ID), "%s", st)
		}
	}},
	{"FencedByLease", func(t *testing.T, h *harness) {
		// An update under a lease that was rescued stores neither its
		// checkpoint nor its output; the other updates of the call are
		// written.
		stale, current := h.reclaimed(t)
		before := h.get(t, current.ID)
		other := h.running(t)
		err := h.repo.UpdateProgress(t.Context(), hour,
			jobs.ProgressUpdate{Lease: stale.Lease(), Progress: jobs.Progress{Fraction: 0.9, Message: "stale"},
				Checkpoint: json.RawMessage(`"stale"`), Output: raw(`"s1"`)},
			jobs.ProgressUpdate{Lease: other.Lease(), Progress: jobs.Progress{Fraction: 0.5},
				Checkpoint: json.RawMessage(`"other"`), Output: raw(`"o1"`, `"o2"`)})
		requireLost(t, err, stale.ID)
		requireSame(t, before, h.get(t, current.ID))
		requireCheckpoint(t, "", h.get(t, current.ID))
		h.requireOutput(t, current.ID)
		requireCheckpoint(t, `"other"`, h.get(t, other.ID), "the others are still written")
		h.requireOutput(t, other.ID, `"o1"`, `"o2"`)
	}},
	{"StaleAndCurrentLeaseOfOneJob", func(t *testing.T, h *harness) {
		// In either order, the update under the current lease stores its
		// checkpoint and output, the stale one nothing.
		stale, current := h.reclaimed(t)
		var want []string
		for i, staleFirst := range []bool{true, false} {
			cp := json.RawMessage(jsonf(`{"current":%d}`, i))
			item := jsonf(`{"item":%d}`, i)
			ups := []jobs.ProgressUpdate{
				{Lease: stale.Lease(), Checkpoint: json.RawMessage(`{"stale":true}`), Output: raw(`"stale"`)},
				{Lease: current.Lease(), Checkpoint: cp, Output: raw(item)},
			}
			if !staleFirst {
				ups[0], ups[1] = ups[1], ups[0]
			}
			requireLost(t, h.repo.UpdateProgress(t.Context(), hour, ups...), stale.ID)
			want = append(want, item)
			requireCheckpoint(t, string(cp), h.get(t, current.ID), "stale first: %v", staleFirst)
			h.requireOutput(t, current.ID, want...)
		}
	}},
	{"LostAfterFinishOrRelease", func(t *testing.T, h *harness) {
		h.createN(t, "k", 3)
		js := h.claim(t, 3)
		require.Len(t, js, 3)
		finished, released, forged := js[0], js[1], js[2]
		h.save(t, finished, `"done"`, `"kept"`)
		h.finish(t, finished, jobs.StatusSucceeded)
		require.NoError(t, h.repo.Release(t.Context(), released.Lease()))
		h.save(t, forged, `"mine"`, `"mine"`)
		wrong := jobs.Lease{JobID: forged.ID, Token: "not-the-token"}
		late := func(l jobs.Lease) jobs.ProgressUpdate {
			return jobs.ProgressUpdate{Lease: l, Checkpoint: json.RawMessage(`"late"`), Output: raw(`"late"`)}
		}
		err := h.repo.UpdateProgress(t.Context(), hour, late(finished.Lease()), late(released.Lease()), late(wrong))
		requireLost(t, err, finished.ID, released.ID, forged.ID)
		requireCheckpoint(t, `"done"`, h.get(t, finished.ID))
		h.requireOutput(t, finished.ID, `"kept"`)
		requireCheckpoint(t, "", h.get(t, released.ID))
		h.requireOutput(t, released.ID)
		requireCheckpoint(t, `"mine"`, h.get(t, forged.ID))
		h.requireOutput(t, forged.ID, `"mine"`)
	}},
}
