package jobsbun_test

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

func TestBunClaimOrderAndFilters(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		past := time.Now().Add(-time.Hour)
		low := &jobs.Job{Kind: "a", Priority: 0, RunAt: past}
		high := &jobs.Job{Kind: "a", Priority: 5}
		older := &jobs.Job{Kind: "a", Priority: 0, RunAt: past.Add(-time.Minute)}
		future := &jobs.Job{Kind: "a", Priority: 9, RunAt: time.Now().Add(time.Hour)}
		otherKind := &jobs.Job{Kind: "b", Priority: 9}
		otherQueue := &jobs.Job{Kind: "a", Queue: "q2", Priority: 9}
		require.NoError(t, repo.Create(ctx, low, high, older, future, otherKind, otherQueue))

		got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w1", Queues: []string{rules.DefaultQueue}, Kinds: []string{"a"}, Limit: 10, LeaseDuration: time.Minute})
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
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
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
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		j := &jobs.Job{Kind: "k", MaxAttempts: 1000}
		require.NoError(t, repo.Create(ctx, j))
		n := rules.MaxErrorHistory + 3
		if testing.Short() {
			n = 5
		}
		for i := range n {
			cl := claimAll(t, repo, 1)
			require.Len(t, cl, 1)
			require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cl[0].Lease(), Status: jobs.StatusPending, Error: "e"}), i)
		}
		g := mustGet(t, repo, j.ID)
		require.Len(t, g.Errors, min(n, rules.MaxErrorHistory))
		require.Equal(t, n, g.Errors[len(g.Errors)-1].Attempt)
		require.Equal(t, n-len(g.Errors)+1, g.Errors[0].Attempt)
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
	repo := testrepo.SQLite(t)
	ctx := t.Context()
	good, badJSON, badTime := newJob("k", 1), newJob("k", 2), newJob("k", 3)
	require.NoError(t, repo.Create(ctx, good, badJSON, badTime))
	_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET payload = '{not json', errors = 'garbage[' WHERE id = ?", badJSON.ID.String())
	require.NoError(t, err)
	_, err = repo.DB().ExecContext(ctx, "UPDATE jobs SET created_at = 'not a time' WHERE id = ?", badTime.ID.String())
	require.NoError(t, err)

	cl := claimAll(t, repo, 10)
	require.Len(t, cl, 2, "the unreadable row is not handed out, the others are claimed")
	require.Equal(t, jobs.StatusFailed, jobs.Status(readStored(t, repo, badTime.ID).status), "the unreadable row failed at once")
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

// TestBunLargeBatches writes batches over one statement's size (SQLite binds
// at most 32 766 values per statement): they still apply in one call.
func TestBunLargeBatches(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		const n = 3700 // 9 values per completion: over 32 766 in one statement
		js := make([]*jobs.Job, n)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k"}
		}
		require.NoError(t, repo.Create(ctx, js...))
		var cl []*jobs.Job
		for len(cl) < n {
			got := claimAll(t, repo, rules.MaxClaimLimit)
			require.NotEmpty(t, got)
			cl = append(cl, got...)
		}
		leases := make([]jobs.Lease, n)
		cs := make([]jobs.Completion, n)
		for i, j := range cl {
			leases[i] = j.Lease()
			cs[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusFailed}
		}
		require.NoError(t, repo.Heartbeat(ctx, time.Minute, leases...))
		require.NoError(t, repo.Finish(ctx, cs...))
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, n, st.ByStatus[jobs.StatusFailed])
	})
}

func TestBunFinishPlainSuccessesBesideOthers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		plain, reported, failed := newJob("k", 1), newJob("k", 2), newJob("k", 3)
		require.NoError(t, repo.Create(ctx, plain, reported, failed))
		lease := map[uuid.UUID]jobs.Lease{}
		for _, j := range claimAll(t, repo, 3) {
			lease[j.ID] = j.Lease()
		}
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute,
			jobs.ProgressUpdate{Lease: lease[reported.ID], Progress: jobs.Progress{Fraction: 0.5, Message: "half"}}))
		require.NoError(t, repo.Finish(ctx,
			jobs.Completion{Lease: lease[plain.ID], Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: lease[failed.ID], Status: jobs.StatusFailed, Error: "bad"},
			jobs.Completion{Lease: lease[reported.ID], Status: jobs.StatusSucceeded, Result: json.RawMessage(" \n")},
		))
		for _, id := range []uuid.UUID{plain.ID, reported.ID} {
			g := mustGet(t, repo, id)
			require.Equal(t, jobs.StatusSucceeded, g.Status)
			require.Nil(t, g.Result)
			require.Equal(t, 1.0, g.Progress.Fraction)
			require.Empty(t, g.Error)
			require.Nil(t, g.Errors)
			require.False(t, g.FinishedAt.IsZero())
			require.Empty(t, g.LeaseToken)
			require.Empty(t, g.LeaseOwner)
			require.True(t, g.LeaseExpiresAt.IsZero())
			require.Equal(t, g.FinishedAt, g.UpdatedAt)
		}
		require.Equal(t, "half", mustGet(t, repo, reported.ID).Progress.Message, "a plain success keeps the last message")
		g := mustGet(t, repo, failed.ID)
		require.Equal(t, jobs.StatusFailed, g.Status)
		require.Equal(t, "bad", g.Error)
		require.ErrorIs(t, repo.Finish(ctx, jobs.Completion{Lease: lease[plain.ID], Status: jobs.StatusSucceeded}), jobs.ErrLeaseLost)
	})
}

func TestBunClaimReturnsTheStoredJob(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		j := &jobs.Job{Kind: "k", Queue: "q", Priority: 3, MaxAttempts: 5, Timeout: time.Second, UniqueKey: "u",
			Payload: json.RawMessage(`{"a":1}`)}
		require.NoError(t, repo.Create(ctx, j))
		cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: 1500*time.Millisecond + 7*time.Nanosecond})
		require.NoError(t, err)
		require.Len(t, cl, 1)
		got := mustGet(t, repo, j.ID)
		require.JSONEq(t, string(got.Payload), string(cl[0].Payload))
		cl[0].Payload = got.Payload
		require.Equal(t, got, cl[0], "a claimed job is the stored job")
		require.Equal(t, jobs.StatusRunning, got.Status)
		require.Equal(t, "w", got.LeaseOwner)
	})
}

func TestBunFinishOverSeveralStatements(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		const n = 75 // over two SQLite statements of 32 completions with results
		js := make([]*jobs.Job, n)
		for i := range js {
			js[i] = newJob("k", i)
		}
		require.NoError(t, repo.Create(ctx, js...))
		cl := claimAll(t, repo, n)
		require.Len(t, cl, n)
		cs := make([]jobs.Completion, n)
		for i, j := range cl {
			cs[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)}
		}
		stale := cl[40].ID
		cs[40].Lease.Token = "stale"
		err := repo.Finish(ctx, cs...)
		require.ErrorIs(t, err, jobs.ErrLeaseLost)
		e, ok := errorsAs(err)
		require.True(t, ok)
		require.Equal(t, stale, e.JobID)
		for i, j := range cl {
			g := mustGet(t, repo, j.ID)
			if j.ID == stale {
				require.Equal(t, jobs.StatusRunning, g.Status)
				continue
			}
			require.Equal(t, jobs.StatusSucceeded, g.Status)
			require.JSONEq(t, `{"i":`+strconv.Itoa(i)+`}`, string(g.Result))
		}
	})
}

// A claim, heartbeat or progress write that waited for another connection's
// write lock grants its lease from when it landed: one computed before the
// wait would already have run out.
func TestBunLeaseRunsFromWhenTheWriteLands(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		const lease = time.Second
		require.NoError(t, repo.Create(t.Context(), newJob("a", nil), newJob("b", nil), newJob("c", nil)))
		held := claimAll(t, repo, 2)
		release := testrepo.LockWrites(t, repo)
		releasedAt := make(chan time.Time, 1)
		go func() {
			time.Sleep(1500 * time.Millisecond) // the outage
			releasedAt <- release()
		}()
		var wg sync.WaitGroup
		var claimed []*jobs.Job
		errs := make([]error, 3)
		wg.Go(func() {
			claimed, errs[0] = repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: lease})
		})
		wg.Go(func() { errs[1] = repo.Heartbeat(t.Context(), lease, held[0].Lease()) })
		wg.Go(func() {
			errs[2] = repo.UpdateProgress(t.Context(), lease, jobs.ProgressUpdate{Lease: held[1].Lease(), Progress: jobs.Progress{Fraction: 0.5}})
		})
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		released := <-releasedAt
		require.Len(t, claimed, 1)
		for _, id := range []uuid.UUID{claimed[0].ID, held[0].ID, held[1].ID} {
			got := mustGet(t, repo, id)
			require.False(t, got.LeaseExpiresAt.Before(released.Add(lease-50*time.Millisecond)),
				"lease of %s expires at %v, before the write could land (%v) + the lease", id, got.LeaseExpiresAt, released)
		}
		require.False(t, claimed[0].LeaseExpiresAt.Before(released.Add(lease-50*time.Millisecond)), "the claim returns the lease as stored")
	})
}
