package jobsbun_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

// items returns the JSON items of the given texts.
func items(texts ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(texts))
	for i, s := range texts {
		out[i] = json.RawMessage(s)
	}
	return out
}

// save is a checkpoint save of l: a checkpoint and its items.
func save(l jobs.Lease, frac float64, cp string, out ...string) jobs.ProgressUpdate {
	return jobs.ProgressUpdate{Lease: l, Progress: jobs.Progress{Fraction: frac}, Checkpoint: json.RawMessage(cp), Output: items(out...)}
}

// readAll returns the whole output of job id, read in pages of 1000.
func readAll(t *testing.T, repo jobs.JobRepository, id uuid.UUID) []string {
	t.Helper()
	var out []string
	var after int64
	for {
		page, err := repo.ReadOutput(t.Context(), id, after, 1000)
		require.NoError(t, err)
		for _, it := range page {
			require.Equal(t, after+1, it.Seq, "items in order, without gaps")
			after = it.Seq
			out = append(out, compactJSON(t, it.Data))
		}
		if len(page) < 1000 {
			return out
		}
	}
}

// compactJSON is b without insignificant spaces (PostgreSQL's jsonb
// normalises them, as it does for payloads).
func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	c, err := json.Marshal(v)
	require.NoError(t, err)
	return string(c)
}

func TestCheckpointSaveStoresCheckpointOutputAndProgress(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		j := newJob("k", 1)
		require.NoError(t, repo.Create(ctx, j))
		got, err := repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Nil(t, got.Checkpoint)
		require.Zero(t, got.OutputSeq)

		c := claimAll(t, repo, 1)[0]
		require.Nil(t, c.Checkpoint)
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, save(c.Lease(), 0.5, `{"page":2}`, `"a"`, `{"b":1}`)))
		got, err = repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.JSONEq(t, `{"page":2}`, string(got.Checkpoint))
		require.Equal(t, int64(2), got.OutputSeq)
		require.Equal(t, 0.5, got.Progress.Fraction)
		require.WithinDuration(t, time.Now().Add(time.Minute), got.LeaseExpiresAt, 5*time.Second, "the save renews the lease")
		require.Equal(t, []string{`"a"`, `{"b":1}`}, readAll(t, repo, j.ID))

		page, err := repo.List(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Len(t, page.Jobs, 1)
		require.JSONEq(t, `{"page":2}`, string(page.Jobs[0].Checkpoint))
		require.Equal(t, int64(2), page.Jobs[0].OutputSeq)

		// The next attempt starts with the checkpoint (claim), and its
		// items follow the first attempt's.
		require.NoError(t, repo.Release(ctx, c.Lease()))
		c = claimAll(t, repo, 1)[0]
		require.JSONEq(t, `{"page":2}`, string(c.Checkpoint))
		require.Equal(t, int64(2), c.OutputSeq)
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, save(c.Lease(), 0.75, `null`, `3`)))
		got, err = repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, "null", string(got.Checkpoint), "a JSON null is a checkpoint, not none")
		require.Equal(t, []string{`"a"`, `{"b":1}`, `3`}, readAll(t, repo, j.ID))

		// A checkpoint without items stores the checkpoint only.
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, save(c.Lease(), 0.8, `[1]`)))
		got, err = repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.JSONEq(t, `[1]`, string(got.Checkpoint))
		require.Equal(t, int64(3), got.OutputSeq)
	})
}

func TestCheckpointSaveIsFenced(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		a, b, la, lb := twoRunning(t, repo)
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, save(la, 0.1, `1`, `"a1"`)))

		stale := la
		stale.Token = "not-the-token"
		err := repo.UpdateProgress(ctx, time.Minute, save(stale, 0.9, `2`, `"lost"`), save(lb, 0.2, `7`, `"b1"`))
		require.ErrorIs(t, err, jobs.ErrLeaseLost)
		require.Contains(t, err.Error(), a.ID.String())
		require.NotContains(t, err.Error(), b.ID.String())

		got, err := repo.Get(ctx, a.ID)
		require.NoError(t, err)
		require.JSONEq(t, `1`, string(got.Checkpoint), "a lost lease stores nothing")
		require.Equal(t, int64(1), got.OutputSeq)
		require.Equal(t, 0.1, got.Progress.Fraction)
		require.Equal(t, []string{`"a1"`}, readAll(t, repo, a.ID))
		require.Equal(t, []string{`"b1"`}, readAll(t, repo, b.ID), "the other lease's save is stored")

		// A finished job's lease is gone too.
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: la, Status: jobs.StatusSucceeded}))
		require.ErrorIs(t, repo.UpdateProgress(ctx, time.Minute, save(la, 0.9, `3`, `"late"`)), jobs.ErrLeaseLost)
		require.Equal(t, []string{`"a1"`}, readAll(t, repo, a.ID))

		// The stale and the current lease of one job in one call: the
		// current one is stored, the stale one reports its loss.
		require.NoError(t, repo.Release(ctx, lb))
		nb := claimAll(t, repo, 1)[0]
		err = repo.UpdateProgress(ctx, time.Minute, save(nb.Lease(), 0.3, `8`, `"b2"`), save(lb, 0.4, `9`, `"stale"`))
		require.ErrorIs(t, err, jobs.ErrLeaseLost)
		got, err = repo.Get(ctx, b.ID)
		require.NoError(t, err)
		require.JSONEq(t, `8`, string(got.Checkpoint))
		require.Equal(t, []string{`"b1"`, `"b2"`}, readAll(t, repo, b.ID))
	})
}

func TestCheckpointSavesOfOneLeaseApplyInOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		a, b, la, lb := twoRunning(t, repo)
		err := repo.UpdateProgress(ctx, time.Minute,
			save(la, 0.1, `{"n":1}`, `1`, `2`),
			jobs.ProgressUpdate{Lease: lb, Progress: jobs.Progress{Fraction: 0.5, Message: "plain"}},
			save(la, 0.2, `{"n":2}`, `3`),
			jobs.ProgressUpdate{Lease: la, Progress: jobs.Progress{Fraction: 0.3, Message: "last"}},
		)
		require.NoError(t, err)
		got, err := repo.Get(ctx, a.ID)
		require.NoError(t, err)
		require.JSONEq(t, `{"n":2}`, string(got.Checkpoint), "the last checkpoint")
		require.Equal(t, jobs.Progress{Fraction: 0.3, Message: "last"}, got.Progress, "the last progress")
		require.Equal(t, int64(3), got.OutputSeq)
		require.Equal(t, []string{`1`, `2`, `3`}, readAll(t, repo, a.ID))

		got, err = repo.Get(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.Progress{Fraction: 0.5, Message: "plain"}, got.Progress, "a progress-only update in the same call")
		require.Nil(t, got.Checkpoint)
		require.Zero(t, got.OutputSeq)
	})
}

func TestCheckpointSaveValidatesFirst(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		j := newJob("k", 1)
		require.NoError(t, repo.Create(ctx, j))
		l := claimAll(t, repo, 1)[0].Lease()
		big := `"` + strings.Repeat("x", 1<<20) + `"`
		for _, tc := range []struct {
			name string
			u    jobs.ProgressUpdate
			want error
		}{
			{"checkpoint not JSON", save(l, 0.5, `{nope`), jobs.ErrInvalidArgument},
			{"blank checkpoint", save(l, 0.5, ` `), jobs.ErrInvalidArgument},
			{"item not JSON", save(l, 0.5, `1`, `"a"`, `nope`), jobs.ErrInvalidArgument},
			{"output without checkpoint", jobs.ProgressUpdate{Lease: l, Output: items(`1`)}, jobs.ErrInvalidArgument},
			{"checkpoint too large", save(l, 0.5, big), jobs.ErrTooLarge},
			{"item too large", save(l, 0.5, `1`, big), jobs.ErrTooLarge},
			{"bad progress", save(l, 2, `1`, `1`), jobs.ErrInvalidArgument},
		} {
			// A valid save first: an invalid update anywhere writes nothing.
			err := repo.UpdateProgress(ctx, time.Minute, save(l, 0.1, `0`, `"valid"`), tc.u)
			require.ErrorIs(t, err, tc.want, tc.name)
			e, ok := errors.AsType[*jobs.Error](err)
			require.True(t, ok, tc.name)
			require.Equal(t, j.ID, e.JobID, tc.name)
		}
		got, err := repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Nil(t, got.Checkpoint)
		require.Zero(t, got.OutputSeq)
		require.Zero(t, got.Progress.Fraction)
		require.Empty(t, readAll(t, repo, j.ID))
	})
}

// TestCheckpointSavesInManyStatements saves more jobs than one statement
// carries, more items than one INSERT carries, and (on PostgreSQL) more
// bytes of items than one statement carries: every item lands once, in
// order.
func TestCheckpointSavesInManyStatements(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		const n = 70
		js := make([]*jobs.Job, n)
		for i := range js {
			js[i] = newJob("k", i)
		}
		require.NoError(t, repo.Create(ctx, js...))
		cl := claimAll(t, repo, n)
		require.Len(t, cl, n)
		bigItem := `"` + strings.Repeat("y", 900<<10) + `"`
		var ups []jobs.ProgressUpdate
		want := map[uuid.UUID][]string{}
		for i, c := range cl {
			var out []string
			switch {
			case i == 0:
				for k := range 3000 {
					out = append(out, fmt.Sprint(k))
				}
			case i < 7:
				out = []string{bigItem, `"small"`}
			default:
				out = []string{fmt.Sprintf(`{"job":%d}`, i)}
			}
			ups = append(ups, save(c.Lease(), 0.5, fmt.Sprint(i), out...))
			want[c.ID] = out
		}
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, ups...))
		for _, c := range cl {
			got := readAll(t, repo, c.ID)
			require.Len(t, got, len(want[c.ID]))
			for k, s := range want[c.ID] {
				if len(s) < 100 {
					require.JSONEq(t, s, got[k])
				} else {
					require.Len(t, got[k], len(s))
				}
			}
		}
	})
}

// twoRunning creates two jobs and claims them, and returns them as created
// with their leases.
func twoRunning(t *testing.T, repo *jobsbun.Repository) (a, b *jobs.Job, la, lb jobs.Lease) {
	t.Helper()
	a, b = newJob("k", 1), newJob("k", 2)
	require.NoError(t, repo.Create(t.Context(), a, b))
	cl := claimAll(t, repo, 2)
	byID := map[uuid.UUID]*jobs.Job{cl[0].ID: cl[0], cl[1].ID: cl[1]}
	return a, b, byID[a.ID].Lease(), byID[b.ID].Lease()
}
