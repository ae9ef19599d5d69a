package jobs_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestBunClaimOrderAndFilters(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobs.BunRepository) {
		ctx := t.Context()
		past := time.Now().Add(-time.Hour)
		low := &jobs.Job{Kind: "a", Priority: 0, RunAt: past}
		high := &jobs.Job{Kind: "a", Priority: 5}
		older := &jobs.Job{Kind: "a", Priority: 0, RunAt: past.Add(-time.Minute)}
		future := &jobs.Job{Kind: "a", Priority: 9, RunAt: time.Now().Add(time.Hour)}
		otherKind := &jobs.Job{Kind: "b", Priority: 9}
		otherQueue := &jobs.Job{Kind: "a", Queue: "q2", Priority: 9}
		require.NoError(t, repo.Create(ctx, low, high, older, future, otherKind, otherQueue))

		got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w1", Queues: []string{jobs.DefaultQueue}, Kinds: []string{"a"}, Limit: 10, LeaseDuration: time.Minute})
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Equal(t, []uuid.UUID{high.ID, older.ID, low.ID}, []uuid.UUID{got[0].ID, got[1].ID, got[2].ID})
		tokens := map[string]bool{}
		for _, j := range got {
			require.Equal(t, jobs.StatusRunning, j.Status)
			require.Equal(t, 1, j.Attempt)
			require.Equal(t, "w1", j.LeaseOwner)
			require.NotEmpty(t, j.LeaseToken)
			tokens[j.LeaseToken] = true
			require.WithinDuration(t, time.Now().Add(time.Minute), j.LeaseExpiresAt, 5*time.Second)
			require.False(t, j.StartedAt.IsZero())
		}
		require.Len(t, tokens, 3, "a fresh token per job")
		again := claimAll(t, repo, 10)
		require.Len(t, again, 2, "other kind and other queue, not the future job")
		none := claimAll(t, repo, 10)
		require.NotNil(t, none)
		require.Empty(t, none)
	})
}

func TestBunFinishAndFencing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobs.BunRepository) {
		ctx := t.Context()
		ok, retry, fail, dup := newJob("k", 1), newJob("k", 2), newJob("k", 3), newJob("k", 4)
		require.NoError(t, repo.Create(ctx, ok, retry, fail, dup))
		cl := claimAll(t, repo, 4)
		require.Len(t, cl, 4)
		lease := map[uuid.UUID]jobs.Lease{}
		for _, j := range cl {
			lease[j.ID] = j.Lease()
		}
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: lease[ok.ID], Progress: jobs.Progress{Fraction: 0.25, Message: "a"}}))
		stale := jobs.Lease{JobID: ok.ID, Token: "not-the-token"}
		err := repo.Heartbeat(ctx, time.Minute, lease[retry.ID], stale)
		require.ErrorIs(t, err, jobs.ErrLeaseLost)
		e, isErr := errorsAs(err)
		require.True(t, isErr)
		require.Equal(t, ok.ID, e.JobID)

		retryAt := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		err = repo.Finish(ctx,
			jobs.Completion{Lease: lease[ok.ID], Status: jobs.StatusSucceeded, Result: json.RawMessage(`{"n":1}`)},
			jobs.Completion{Lease: lease[retry.ID], Status: jobs.StatusPending, Error: "try again", RunAt: retryAt},
			jobs.Completion{Lease: lease[fail.ID], Status: jobs.StatusFailed, Error: "bad", Progress: &jobs.Progress{Fraction: 0.5, Message: "half"}},
			jobs.Completion{Lease: stale, Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: lease[dup.ID], Status: jobs.StatusCanceled},
			jobs.Completion{Lease: lease[dup.ID], Status: jobs.StatusSucceeded},
		)
		require.ErrorIs(t, err, jobs.ErrLeaseLost)

		g := mustGet(t, repo, ok.ID)
		require.Equal(t, jobs.StatusSucceeded, g.Status)
		require.JSONEq(t, `{"n":1}`, string(g.Result))
		require.Equal(t, jobs.Progress{Fraction: 1, Message: "a"}, g.Progress)
		require.False(t, g.FinishedAt.IsZero())
		require.Empty(t, g.LeaseToken)
		require.Empty(t, g.LeaseOwner)
		require.True(t, g.LeaseExpiresAt.IsZero())

		g = mustGet(t, repo, retry.ID)
		require.Equal(t, jobs.StatusPending, g.Status)
		require.True(t, retryAt.Equal(g.RunAt))
		require.Equal(t, 1, g.Attempt)
		require.Equal(t, "try again", g.Error)
		require.Len(t, g.Errors, 1)
		require.Equal(t, jobs.AttemptError{Attempt: 1, Error: "try again", At: g.Errors[0].At}, g.Errors[0])
		require.WithinDuration(t, time.Now(), g.Errors[0].At, 5*time.Second)
		require.True(t, g.FinishedAt.IsZero())

		g = mustGet(t, repo, fail.ID)
		require.Equal(t, jobs.StatusFailed, g.Status)
		require.Equal(t, jobs.Progress{Fraction: 0.5, Message: "half"}, g.Progress)
		require.Nil(t, g.Result)

		require.Equal(t, jobs.StatusCanceled, mustGet(t, repo, dup.ID).Status)

		// Finished jobs fence every later write.
		require.ErrorIs(t, repo.Heartbeat(ctx, time.Minute, lease[ok.ID]), jobs.ErrLeaseLost)
		require.ErrorIs(t, repo.Release(ctx, lease[ok.ID]), jobs.ErrLeaseLost)
		require.ErrorIs(t, repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: lease[fail.ID]}), jobs.ErrLeaseLost)
		require.ErrorIs(t, repo.Finish(ctx, jobs.Completion{Lease: lease[fail.ID], Status: jobs.StatusSucceeded}), jobs.ErrLeaseLost)
		require.Equal(t, jobs.StatusFailed, mustGet(t, repo, fail.ID).Status)

		// Invalid completions write nothing.
		err = repo.Finish(ctx, jobs.Completion{Lease: lease[retry.ID], Status: jobs.StatusRunning})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		err = repo.Finish(ctx, jobs.Completion{Lease: lease[retry.ID], Status: jobs.StatusSucceeded, Result: json.RawMessage("{")})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	})
}

func TestBunErrorHistoryIsCapped(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobs.BunRepository) {
		ctx := t.Context()
		j := &jobs.Job{Kind: "k", MaxAttempts: 1000}
		require.NoError(t, repo.Create(ctx, j))
		n := jobs.MaxErrorHistory + 3
		if testing.Short() {
			n = 5
		}
		for i := range n {
			cl := claimAll(t, repo, 1)
			require.Len(t, cl, 1)
			require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cl[0].Lease(), Status: jobs.StatusPending, Error: "e"}), i)
		}
		g := mustGet(t, repo, j.ID)
		require.Len(t, g.Errors, min(n, jobs.MaxErrorHistory))
		require.Equal(t, n, g.Errors[len(g.Errors)-1].Attempt)
		require.Equal(t, n-len(g.Errors)+1, g.Errors[0].Attempt)
	})
}

func TestBunReleaseAndCancel(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobs.BunRepository) {
		ctx := t.Context()
		a, b, c := newJob("k", 1), newJob("k", 2), newJob("k", 3)
		require.NoError(t, repo.Create(ctx, a, b, c))
		p, err := repo.RequestCancel(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, p.Status)
		require.False(t, p.FinishedAt.IsZero())
		_, err = repo.RequestCancel(ctx, c.ID)
		require.ErrorIs(t, err, jobs.ErrConflict)

		cl := claimAll(t, repo, 2)
		require.Len(t, cl, 2)
		ids, err := repo.CancelRequests(ctx, "w1")
		require.NoError(t, err)
		require.Empty(t, ids)
		r1, err := repo.RequestCancel(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusRunning, r1.Status)
		require.True(t, r1.CancelRequested)
		r2, err := repo.RequestCancel(ctx, b.ID)
		require.NoError(t, err)
		require.True(t, r1.UpdatedAt.Equal(r2.UpdatedAt), "second request is a no-op")
		ids, err = repo.CancelRequests(ctx, "w1")
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{b.ID}, ids)
		ids, err = repo.CancelRequests(ctx, "other")
		require.NoError(t, err)
		require.Empty(t, ids)

		require.NoError(t, repo.Release(ctx, cl[0].Lease(), cl[1].Lease()))
		ga, gb := mustGet(t, repo, a.ID), mustGet(t, repo, b.ID)
		require.Equal(t, jobs.StatusPending, ga.Status)
		require.Equal(t, 0, ga.Attempt, "release does not count the attempt")
		require.Empty(t, ga.LeaseToken)
		require.Equal(t, jobs.StatusCanceled, gb.Status)
		require.False(t, gb.FinishedAt.IsZero())
		require.ErrorIs(t, repo.Release(ctx, cl[0].Lease()), jobs.ErrLeaseLost)
		require.Len(t, claimAll(t, repo, 5), 1, "released job is claimable at once")
	})
}

func TestBunRescueExpired(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobs.BunRepository) {
		ctx := t.Context()
		const n = 40
		var js []*jobs.Job
		for i := range n {
			j := newJob("k", i)
			j.MaxAttempts = 1 + i%2
			js = append(js, j)
		}
		live := newJob("k", "live")
		require.NoError(t, repo.Create(ctx, js...))
		cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: n, LeaseDuration: time.Millisecond})
		require.NoError(t, err)
		require.Len(t, cl, n)
		require.NoError(t, repo.Create(ctx, live))
		_, err = repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Hour})
		require.NoError(t, err)
		require.NoError(t, repo.Heartbeat(ctx, time.Millisecond, cl[0].Lease()))
		require.Eventually(t, func() bool {
			return time.Since(cl[0].LeaseExpiresAt) > 50*time.Millisecond
		}, 5*time.Second, 5*time.Millisecond)
		time.Sleep(10 * time.Millisecond) // past the renewed lease too

		var mu sync.Mutex
		seen := map[uuid.UUID]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					got, err := repo.RescueExpired(ctx, 7)
					if !assertNoError(t, err) || len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						seen[j.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, seen, n, "every expired lease rescued, the live one not")
		for id, c := range seen {
			require.Equal(t, 1, c, id)
		}
		for _, j := range js {
			g := mustGet(t, repo, j.ID)
			want := jobs.StatusPending
			if j.MaxAttempts == 1 {
				want = jobs.StatusFailed
			}
			require.Equal(t, want, g.Status)
			require.Equal(t, "lease expired", g.Error)
			require.Empty(t, g.LeaseToken)
		}
		require.ErrorIs(t, repo.Heartbeat(ctx, time.Minute, cl[0].Lease()), jobs.ErrLeaseLost)
		_, err = repo.RescueExpired(ctx, 0)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	})
}

func TestBunPrune(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobs.BunRepository) {
		ctx := t.Context()
		var js []*jobs.Job
		for i := range 25 {
			js = append(js, newJob("k", i))
		}
		require.NoError(t, repo.Create(ctx, js...))
		cl := claimAll(t, repo, 20)
		var cs []jobs.Completion
		for _, j := range cl {
			cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
		}
		require.NoError(t, repo.Finish(ctx, cs...))
		n, err := repo.Prune(ctx, time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = repo.Prune(ctx, time.Now().Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 20, n)
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 5, st.Total)
	})
}

func mustGet(t *testing.T, repo jobs.JobRepository, id uuid.UUID) *jobs.Job {
	t.Helper()
	j, err := repo.Get(t.Context(), id)
	require.NoError(t, err)
	return j
}

// assertNoError reports err without stopping the goroutine it runs in.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

// TestSQLitePoisonRowsDoNotBreakABatch corrupts stored rows with raw SQL:
// the claim still returns the healthy rows, a corrupt payload comes back as
// stored, and a corrupt error history is replaced on the next error.
func TestSQLitePoisonRowsDoNotBreakABatch(t *testing.T) {
	t.Parallel()
	repo := openSQLite(t)
	ctx := t.Context()
	good, badJSON, badTime := newJob("k", 1), newJob("k", 2), newJob("k", 3)
	require.NoError(t, repo.Create(ctx, good, badJSON, badTime))
	_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET payload = '{not json', errors = 'garbage[' WHERE id = ?", badJSON.ID.String())
	require.NoError(t, err)
	_, err = repo.DB().ExecContext(ctx, "UPDATE jobs SET created_at = 'not a time' WHERE id = ?", badTime.ID.String())
	require.NoError(t, err)

	cl := claimAll(t, repo, 10)
	require.Len(t, cl, 2, "the unreadable row is left out, the others are claimed")
	var poisoned *jobs.Job
	for _, j := range cl {
		require.NotEqual(t, badTime.ID, j.ID)
		if j.ID == badJSON.ID {
			poisoned = j
		}
	}
	require.NotNil(t, poisoned)
	require.Equal(t, "{not json", string(poisoned.Payload))
	require.Nil(t, poisoned.Errors)
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: poisoned.Lease(), Status: jobs.StatusFailed, Error: "cannot decode"}))
	g := mustGet(t, repo, badJSON.ID)
	require.Len(t, g.Errors, 1)
	require.Equal(t, "cannot decode", g.Errors[0].Error)
}
