package jobs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// A failure at the head of a long chain cancels the whole chain in the
// write that ends the head, each job naming the one before it (the
// cascade is a loop, not a recursion).
func TestMemoryDepsLongChainCascades(t *testing.T) {
	t.Parallel()
	n := 10_000
	if raceEnabled {
		n = 2_000
	}
	repo := memRepo(t)
	ctx := t.Context()
	js := make([]*jobs.Job, n)
	js[0] = &jobs.Job{Kind: "head"}
	for i := 1; i < n; i++ {
		js[i] = &jobs.Job{Kind: "link", After: []*jobs.Job{js[i-1]}}
	}
	require.NoError(t, repo.Create(ctx, js...))
	head, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, head, 1)
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: head[0].Lease(), Status: jobs.StatusFailed}))
	s, err := repo.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, n-1, s.ByStatus[jobs.StatusCanceled])
	last, err := repo.Get(ctx, js[n-1].ID)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("dependency %s canceled", js[n-2].ID), last.Error)
}

// A job that waits for many jobs becomes pending once, when the last of
// them ends, also when they all end in one Finish.
func TestMemoryDepsWideFanIn(t *testing.T) {
	t.Parallel()
	const n = 1000
	repo := memRepo(t)
	ctx := t.Context()
	js := make([]*jobs.Job, n+1)
	for i := range n {
		js[i] = &jobs.Job{Kind: "part"}
	}
	js[n] = &jobs.Job{Kind: "join", After: js[:n]}
	require.NoError(t, repo.Create(ctx, js...))
	require.Len(t, js[n].DependsOn, n)
	parts, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: n, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, parts, n)
	cs := make([]jobs.Completion, n)
	for i, p := range parts {
		cs[i] = jobs.Completion{Lease: p.Lease(), Status: jobs.StatusSucceeded}
	}
	require.NoError(t, repo.Finish(ctx, cs[:n-1]...))
	join, err := repo.Get(ctx, js[n].ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusWaiting, join.Status)
	require.NoError(t, repo.Finish(ctx, cs[n-1]))
	got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, js[n].ID, got[0].ID)
}

// A job whose dependencies have ended takes its turn as a job created at
// that moment: after the pending jobs of its concurrency key created while
// it waited, although it is older than they are.
func TestMemoryDepsPendingTakesItsTurn(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	ctx := t.Context()
	parent := &jobs.Job{Kind: "parent"}
	waiter := &jobs.Job{Kind: "k", ConcurrencyKey: "a", After: []*jobs.Job{parent}}
	require.NoError(t, repo.Create(ctx, parent, waiter))
	p, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Kinds: []string{"parent"}, Limit: 1, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, p, 1)
	later := []*jobs.Job{{Kind: "k", ConcurrencyKey: "a"}, {Kind: "k", ConcurrencyKey: "a"}}
	require.NoError(t, repo.Create(ctx, later...))
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: p[0].Lease(), Status: jobs.StatusSucceeded}))
	for _, want := range []*jobs.Job{later[0], later[1], waiter} {
		got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Kinds: []string{"k"}, Limit: 1, LeaseDuration: time.Hour})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, want.ID, got[0].ID)
	}
}
