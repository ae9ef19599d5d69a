package jobs_test

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// A batch may be a job of another batch: its fraction is its share of the
// outer batch, which follows its jobs' progress through it, and canceling
// the outer batch cancels the inner one's jobs in turn.
func TestMemoryBatchOfBatches(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	ctx := t.Context()
	fraction := func(j *jobs.Job) float64 {
		t.Helper()
		got, err := repo.Get(ctx, j.ID)
		require.NoError(t, err)
		return got.Progress.Fraction
	}
	claim := func(kind string) *jobs.Job {
		t.Helper()
		got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Kinds: []string{kind}, Limit: 1, LeaseDuration: time.Hour})
		require.NoError(t, err)
		require.Len(t, got, 1)
		return got[0]
	}
	x, y, z := &jobs.Job{Kind: "x"}, &jobs.Job{Kind: "y"}, &jobs.Job{Kind: "z"}
	inner := &jobs.Job{Kind: jobs.BatchKind, Batch: true, After: []*jobs.Job{x, y}}
	outer := &jobs.Job{Kind: jobs.BatchKind, Batch: true, After: []*jobs.Job{inner, z}}
	require.NoError(t, repo.Create(ctx, x, y, z, inner, outer))
	cx := claim("x")
	require.NoError(t, repo.UpdateProgress(ctx, time.Hour, jobs.ProgressUpdate{Lease: cx.Lease(), Progress: jobs.Progress{Fraction: 0.5}}))
	require.InDelta(t, 0.25, fraction(inner), 1e-9)
	require.InDelta(t, 0.125, fraction(outer), 1e-9)
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cx.Lease(), Status: jobs.StatusSucceeded}))
	require.InDelta(t, 0.5, fraction(inner), 1e-9)
	require.InDelta(t, 0.25, fraction(outer), 1e-9)
	cy := claim("y")
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cy.Lease(), Status: jobs.StatusFailed}))
	got, err := repo.Get(ctx, inner.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, got.Status)
	require.Equal(t, "1 of 2 jobs did not succeed", got.Error)
	require.Equal(t, 1.0, got.Progress.Fraction)
	require.InDelta(t, 0.5, fraction(outer), 1e-9)
	cz := claim("z")
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cz.Lease(), Status: jobs.StatusSucceeded}))
	got, err = repo.Get(ctx, outer.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, got.Status, "a job of the outer batch, the inner one, failed")
	require.Equal(t, "1 of 2 jobs did not succeed", got.Error)

	// Cancel goes down through the batches.
	a, b := &jobs.Job{Kind: "a"}, &jobs.Job{Kind: "b"}
	in := &jobs.Job{Kind: "cb", Batch: true, After: []*jobs.Job{a}}
	out := &jobs.Job{Kind: "cb", Batch: true, After: []*jobs.Job{in, b}}
	require.NoError(t, repo.Create(ctx, a, b, in, out))
	ca := claim("a")
	_, err = repo.RequestCancel(ctx, out.ID)
	require.NoError(t, err)
	for _, j := range []*jobs.Job{out, in, b} {
		got, err := repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, got.Status, "job of kind %q", j.Kind)
	}
	got, err = repo.Get(ctx, ca.ID)
	require.NoError(t, err)
	require.True(t, got.CancelRequested)
}
