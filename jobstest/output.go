package jobstest

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// raw returns the values as output items, or nil when there are none.
func raw(vals ...string) []json.RawMessage {
	if len(vals) == 0 {
		return nil
	}
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = json.RawMessage(v)
	}
	return out
}

// jsonf is fmt.Sprintf, for JSON values.
func jsonf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// readOutput reads one page of job id's output and fails the case on error.
func (h *harness) readOutput(t *testing.T, id uuid.UUID, after int64, limit int) []jobs.OutputItem {
	t.Helper()
	got, err := h.repo.ReadOutput(t.Context(), id, after, limit)
	require.NoError(t, err, "ReadOutput(after %d, limit %d)", after, limit)
	require.NotNil(t, got, "ReadOutput returns an empty slice, not nil, when there is nothing to read")
	return got
}

// readAll reads the whole output of job id, in pages of the largest limit.
func (h *harness) readAll(t *testing.T, id uuid.UUID) []jobs.OutputItem {
	t.Helper()
	var all []jobs.OutputItem
	for range 10_000 {
		page := h.readOutput(t, id, int64(len(all)), rules.MaxOutputRead)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
	require.FailNow(t, "ReadOutput never returned an empty page")
	return nil
}

// requireOutput fails unless the output of job id is exactly want (as JSON
// documents), numbered 1 to len(want), and the job's OutputSeq is len(want).
func (h *harness) requireOutput(t *testing.T, id uuid.UUID, want ...string) {
	t.Helper()
	got := h.readAll(t, id)
	requireItems(t, got, 1, want...)
	require.Equal(t, int64(len(want)), h.get(t, id).OutputSeq, "OutputSeq is the number of the last item")
}

// requireItems fails unless got are the items want (as JSON documents),
// numbered from first.
func requireItems(t *testing.T, got []jobs.OutputItem, first int64, want ...string) {
	t.Helper()
	require.Len(t, got, len(want), "output items: %v", got)
	for i, it := range got {
		require.Equal(t, first+int64(i), it.Seq, "item %d is numbered in order", i)
		require.NotNil(t, it.Data, "item %d has data", it.Seq)
		require.JSONEq(t, want[i], string(it.Data), "item %d", it.Seq)
	}
}

// resume is the case "Resume...AfterX": attempt 1 saves a checkpoint with
// items 1 to 3 and then loses its lease (rescued when it expired, or retried
// by its own Finish); attempt 2 starts from that checkpoint and adds items 4
// to 6; attempt 1's late writes store nothing. The output a reader sees is
// 1 to 6, each once.
func resume(retry bool) func(t *testing.T, h *harness) {
	return func(t *testing.T, h *harness) {
		ctx := t.Context()
		id := h.create(t, &jobs.Job{Kind: "k", MaxAttempts: 3})[0].ID
		a1 := h.claimOne(t)
		lease := hour
		if !retry {
			lease = time.Millisecond // the process of attempt 1 "dies" after this update
		}
		require.NoError(t, h.repo.UpdateProgress(ctx, lease, jobs.ProgressUpdate{Lease: a1.Lease(),
			Progress: jobs.Progress{Fraction: 0.3}, Checkpoint: json.RawMessage(`{"done":3}`),
			Output: raw(`{"n":1}`, `{"n":2}`, `{"n":3}`)}))
		if retry {
			// The items after the checkpoint go with the retry: attempt 2
			// redoes that work.
			require.NoError(t, h.repo.Finish(ctx, jobs.Completion{Lease: a1.Lease(), Status: jobs.StatusPending,
				Error: "flaky", Output: raw(`{"n":4,"attempt":1}`)}))
		} else {
			waitExpired(t, h.get(t, id))
			rescued, err := h.repo.RescueExpired(ctx, 10)
			require.NoError(t, err)
			require.Len(t, rescued, 1)
			require.Equal(t, int64(3), rescued[0].OutputSeq)
		}
		h.requireOutput(t, id, `{"n":1}`, `{"n":2}`, `{"n":3}`)

		a2 := h.claimOne(t)
		require.Equal(t, id, a2.ID)
		require.Equal(t, 2, a2.Attempt)
		requireCheckpoint(t, `{"done":3}`, a2, "attempt 2 starts from attempt 1's checkpoint")
		require.Equal(t, int64(3), a2.OutputSeq, "attempt 2 sees how much output is stored")

		requireLost(t, h.repo.UpdateProgress(ctx, hour, jobs.ProgressUpdate{Lease: a1.Lease(),
			Checkpoint: json.RawMessage(`{"done":4,"late":true}`), Output: raw(`{"n":4,"late":true}`)}), id)
		h.save(t, a2, `{"done":5}`, `{"n":4}`, `{"n":5}`)
		requireLost(t, h.repo.Finish(ctx, jobs.Completion{Lease: a1.Lease(), Status: jobs.StatusSucceeded,
			Output: raw(`{"n":6,"late":true}`)}), id)
		require.NoError(t, h.repo.Finish(ctx, jobs.Completion{Lease: a2.Lease(), Status: jobs.StatusSucceeded,
			Output: raw(`{"n":6}`)}))

		got := h.get(t, id)
		require.Equal(t, jobs.StatusSucceeded, got.Status)
		requireCheckpoint(t, `{"done":5}`, got)
		h.requireOutput(t, id, `{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`, `{"n":6}`)
	}
}

// outputCases check a job's output: items are stored only with a checkpoint
// or an outcome, numbered from 1 without gaps or repeats across attempts,
// and read back from any point.
var outputCases = []testCase{
	{"NumberedInOrder", func(t *testing.T, h *harness) {
		// Items of every JSON type, over several calls; a checkpoint
		// without items and a progress-only update append nothing.
		j := h.running(t)
		h.requireOutput(t, j.ID)
		h.save(t, j, `1`, `{"k":"v"}`, `[1,2]`)
		h.requireOutput(t, j.ID, `{"k":"v"}`, `[1,2]`)
		h.save(t, j, `2`)
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour, jobs.ProgressUpdate{Lease: j.Lease(), Progress: jobs.Progress{Fraction: 0.5}}))
		h.requireOutput(t, j.ID, `{"k":"v"}`, `[1,2]`)
		h.save(t, j, `3`, `"s"`, `42`, `true`, `null`, `{"nested":{"a":[{}]}}`)
		h.requireOutput(t, j.ID, `{"k":"v"}`, `[1,2]`, `"s"`, `42`, `true`, `null`, `{"nested":{"a":[{}]}}`)
	}},
	{"SeveralUpdatesInOneCall", func(t *testing.T, h *harness) {
		// Updates of one lease apply in order: their outputs are appended
		// one after the other, the last progress and the last (non-nil)
		// checkpoint are stored. Each job numbers its own output.
		h.createN(t, "k", 2)
		js := h.claim(t, 2)
		require.Len(t, js, 2)
		a, b := js[0], js[1]
		require.NoError(t, h.repo.UpdateProgress(t.Context(), hour,
			jobs.ProgressUpdate{Lease: a.Lease(), Progress: jobs.Progress{Fraction: 0.1}, Checkpoint: json.RawMessage(`"a1"`), Output: raw(`"a1"`, `"a2"`)},
			jobs.ProgressUpdate{Lease: b.Lease(), Progress: jobs.Progress{Fraction: 0.2}, Checkpoint: json.RawMessage(`"b1"`), Output: raw(`"b1"`)},
			jobs.ProgressUpdate{Lease: a.Lease(), Progress: jobs.Progress{Fraction: 0.3}, Checkpoint: json.RawMessage(`"a2"`), Output: raw(`"a3"`)},
			jobs.ProgressUpdate{Lease: a.Lease(), Progress: jobs.Progress{Fraction: 0.4}},
			jobs.ProgressUpdate{Lease: b.Lease(), Progress: jobs.Progress{Fraction: 0.5}, Checkpoint: json.RawMessage(`"b2"`), Output: raw(`"b2"`)}))
		h.requireOutput(t, a.ID, `"a1"`, `"a2"`, `"a3"`)
		h.requireOutput(t, b.ID, `"b1"`, `"b2"`)
		gotA, gotB := h.get(t, a.ID), h.get(t, b.ID)
		requireCheckpoint(t, `"a2"`, gotA, "a later progress-only update keeps the call's last checkpoint")
		require.Equal(t, 0.4, gotA.Progress.Fraction)
		requireCheckpoint(t, `"b2"`, gotB)
		require.Equal(t, 0.5, gotB.Progress.Fraction)
	}},
	{"ReadFromAnyPoint", func(t *testing.T, h *harness) {
		j := h.running(t)
		h.save(t, j, `1`, `"i1"`, `"i2"`)
		h.save(t, j, `2`, `"i3"`, `"i4"`, `"i5"`)
		all := []string{`"i1"`, `"i2"`, `"i3"`, `"i4"`, `"i5"`}
		for _, c := range []struct {
			after       int64
			limit, from int // the items from all[from:], at most limit of them
		}{
			{0, rules.MaxOutputRead, 0}, {0, 1, 0}, {0, 2, 0}, {0, 5, 0}, {0, 6, 0},
			{1, 1, 1}, {2, 2, 2}, {2, rules.MaxOutputRead, 2}, {4, 1, 4}, {4, 10, 4},
			{5, 1, 5}, {5, rules.MaxOutputRead, 5}, {6, 1, 5}, {1 << 40, 10, 5}, {math.MaxInt64, rules.MaxOutputRead, 5},
		} {
			want := all[min(c.from, len(all)):]
			want = want[:min(c.limit, len(want))]
			got := h.readOutput(t, j.ID, c.after, c.limit)
			requireItems(t, got, c.after+1, want...)
		}
		var paged []jobs.OutputItem
		for after := int64(0); ; {
			page := h.readOutput(t, j.ID, after, 2)
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		requireItems(t, paged, 1, all...)
		pending := h.create(t, job("k"))[0]
		require.Empty(t, h.readOutput(t, pending.ID, 0, 1), "a job without output reads as empty")
	}},
	{"FinishAppends", func(t *testing.T, h *harness) {
		// A completion that ends the job appends its items after the
		// stored ones, with or without an earlier checkpoint.
		for _, st := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled} {
			j := h.running(t)
			h.save(t, j, `{"at":1}`, `"a"`)
			require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: st, Output: raw(`"b"`, `"c"`)}))
			require.Equal(t, st, h.get(t, j.ID).Status)
			h.requireOutput(t, j.ID, `"a"`, `"b"`, `"c"`)
		}
		j := h.running(t)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Output: raw(`{"only":true}`)}))
		h.requireOutput(t, j.ID, `{"only":true}`)
		requireCheckpoint(t, "", h.get(t, j.ID), "output of a completion sets no checkpoint")
		j = h.running(t)
		h.save(t, j, `1`, `"x"`)
		h.finish(t, j, jobs.StatusSucceeded)
		h.requireOutput(t, j.ID, `"x"`)
	}},
	{"FinishAppendsWhenCancelWins", func(t *testing.T, h *harness) {
		// A completion stored as canceled because of a cancel request ends
		// the job, so its items are appended, even those of a retry.
		h.createN(t, "k", 2)
		js := h.claim(t, 2)
		require.Len(t, js, 2)
		for _, j := range js {
			h.save(t, j, `1`, `"a"`)
			_, err := h.repo.RequestCancel(t.Context(), j.ID)
			require.NoError(t, err)
		}
		err := h.repo.Finish(t.Context(),
			jobs.Completion{Lease: js[0].Lease(), Status: jobs.StatusSucceeded, Output: raw(`"b"`)},
			jobs.Completion{Lease: js[1].Lease(), Status: jobs.StatusPending, Error: "again", Output: raw(`"b"`, `"c"`)})
		requireCanceledInstead(t, err, js[0].ID, js[1].ID)
		require.Equal(t, jobs.StatusCanceled, h.get(t, js[0].ID).Status)
		require.Equal(t, jobs.StatusCanceled, h.get(t, js[1].ID).Status)
		h.requireOutput(t, js[0].ID, `"a"`, `"b"`)
		h.requireOutput(t, js[1].ID, `"a"`, `"b"`, `"c"`)
	}},
	{"RetryDropsOutput", func(t *testing.T, h *harness) {
		j := h.running(t)
		h.save(t, j, `{"at":1}`, `"a"`)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: jobs.StatusPending,
			Error: "again", Output: raw(`"dropped"`)}))
		h.requireOutput(t, j.ID, `"a"`)
		again := h.claimOne(t)
		require.Equal(t, int64(1), again.OutputSeq)
		requireCheckpoint(t, `{"at":1}`, again)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: again.Lease(), Status: jobs.StatusSucceeded, Output: raw(`"b"`)}))
		h.requireOutput(t, j.ID, `"a"`, `"b"`)
	}},
	{"LostFinishStoresNoOutput", func(t *testing.T, h *harness) {
		stale, current := h.reclaimed(t)
		requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: stale.Lease(), Status: jobs.StatusSucceeded, Output: raw(`"stale"`)}), stale.ID)
		h.requireOutput(t, current.ID)
		err := h.repo.Finish(t.Context(),
			jobs.Completion{Lease: current.Lease(), Status: jobs.StatusSucceeded, Output: raw(`"first"`)},
			jobs.Completion{Lease: current.Lease(), Status: jobs.StatusFailed, Output: raw(`"second"`)})
		requireLost(t, err, current.ID)
		h.requireOutput(t, current.ID, `"first"`)
		requireLost(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: current.Lease(), Status: jobs.StatusFailed, Output: raw(`"late"`)}), current.ID)
		h.requireOutput(t, current.ID, `"first"`)
	}},
	{"ResumeAfterRescueAgrees", resume(false)},
	{"ResumeAfterRetryAgrees", resume(true)},
	{"PrunedWithJob", func(t *testing.T, h *harness) {
		done := h.running(t)
		h.save(t, done, `1`, `"x"`)
		require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: done.Lease(), Status: jobs.StatusSucceeded, Output: raw(`"y"`)}))
		live := h.running(t)
		h.save(t, live, `1`, `"z"`)
		n, err := h.repo.Prune(t.Context(), time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = h.repo.ReadOutput(t.Context(), done.ID, 0, 10)
		requireCode(t, err, jobs.ErrNotFound, "a pruned job's output is gone")
		h.requireOutput(t, live.ID, `"z"`)
		h.finish(t, live, jobs.StatusFailed)
		n, err = h.repo.Prune(t.Context(), time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = h.repo.ReadOutput(t.Context(), live.ID, 0, 10)
		requireCode(t, err, jobs.ErrNotFound)
	}},
}
