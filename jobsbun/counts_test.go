package jobsbun_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"

	"github.com/stretchr/testify/require"
)

// requireCountsMatchTable compares Stats' counts with a GROUP BY of the
// jobs table (Paused and OldestPending are checked by jobstest).
func requireCountsMatchTable(t *testing.T, repo *jobsbun.Repository) {
	t.Helper()
	want := &jobs.Stats{ByStatus: map[jobs.Status]int{}, ByKind: map[string]map[jobs.Status]int{}, ByQueue: map[string]map[jobs.Status]int{}}
	rows, err := repo.DB().QueryContext(t.Context(), "SELECT queue, kind, status, COUNT(*) FROM jobs GROUP BY queue, kind, status")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var q, k, s string
		var n int
		require.NoError(t, rows.Scan(&q, &k, &s, &n))
		want.Add(q, k, jobs.Status(s), n)
	}
	require.NoError(t, rows.Err())
	got, err := repo.Stats(t.Context())
	require.NoError(t, err)
	want.Paused, want.OldestPending = got.Paused, got.OldestPending
	require.Equal(t, want, got)
}

// finishAll claims every pending job and finishes them, one statement per
// claim, with statuses in turn.
func finishAll(t *testing.T, repo *jobsbun.Repository) {
	t.Helper()
	for {
		got, err := repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Limit: 50, LeaseDuration: time.Hour})
		require.NoError(t, err)
		if len(got) == 0 {
			return
		}
		cs := make([]jobs.Completion, len(got))
		for i, j := range got {
			cs[i] = jobs.Completion{Lease: j.Lease(), Status: []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}[i%3]}
		}
		require.NoError(t, repo.Finish(t.Context(), cs...))
	}
}

// TestCountsFollowRawSQL: the counts follow writes made with SQL of one's
// own too, since triggers keep them (jobs finished, a finished job set
// back to pending, one moved to another queue, one whose status changes,
// finish times moved, a retry, one deleted, one inserted finished), and a delete of one's own after a Prune is counted as well
// (Prune holds the SQLite trigger back only inside its own transaction).
func TestCountsFollowRawSQL(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		js := []*jobs.Job{{Kind: "a"}, {Kind: "a"}, {Kind: "b"}, {Kind: "b", Queue: "q"}}
		require.NoError(t, repo.Create(ctx, js...))
		id := func(i int) string { return js[i].ID.String() }
		exec := func(query string, args ...any) {
			t.Helper()
			_, err := repo.DB().ExecContext(ctx, query, args...)
			require.NoError(t, err)
		}
		exec("UPDATE jobs SET status = 'failed', finished_at = updated_at")
		requireCountsMatchTable(t, repo)
		exec("UPDATE jobs SET status = 'pending', finished_at = NULL WHERE id = ?", id(0))
		exec("UPDATE jobs SET queue = 'other' WHERE id = ?", id(1))
		exec("UPDATE jobs SET status = 'canceled' WHERE id = ?", id(3))
		requireCountsMatchTable(t, repo)
		exec("UPDATE jobs SET finished_at = created_at WHERE finished_at IS NOT NULL")
		_, err := repo.Retry(ctx, js[3].ID)
		require.NoError(t, err)
		requireCountsMatchTable(t, repo)
		exec("UPDATE jobs SET status = 'succeeded', finished_at = updated_at WHERE id = ?", id(3))
		requireCountsMatchTable(t, repo)
		_, err = repo.Prune(ctx, time.Now().Add(-time.Hour)) // deletes nothing
		require.NoError(t, err)
		exec("DELETE FROM jobs WHERE id = ?", id(2))
		requireCountsMatchTable(t, repo)
		exec("INSERT INTO jobs (id, kind, queue, status, payload, max_attempts, run_at, created_at, updated_at, finished_at) "+
			"SELECT ?, kind, queue, 'canceled', payload, max_attempts, run_at, created_at, updated_at, updated_at FROM jobs WHERE id = ?",
			"0190a0f0-0000-7000-8000-000000000001", id(1))
		requireCountsMatchTable(t, repo)
	})
}

// TestPruneKeepsCountsExact prunes part of the finished jobs, in several
// batches, then deletes some with Delete and DeleteMany: the counts, which
// our deletes take off once per queue, kind and status instead of row by
// row, match the table after each.
func TestPruneKeepsCountsExact(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		const n = 2600 // three Prune batches
		js := make([]*jobs.Job, n)
		for i := range js {
			js[i] = &jobs.Job{Kind: []string{"a", "b", "c"}[i%3], Queue: []string{"q1", "q2"}[i%2], Payload: json.RawMessage(`{}`)}
		}
		require.NoError(t, repo.Create(ctx, js...))
		finishAll(t, repo)
		requireCountsMatchTable(t, repo)
		// Half the jobs finished an hour ago, the rest stay.
		_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET finished_at = ? WHERE kind <> 'c'", time.Now().Add(-time.Hour).UTC())
		require.NoError(t, err)
		pruned, err := repo.Prune(ctx, time.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.Equal(t, n-n/3, pruned) // kinds a and b
		requireCountsMatchTable(t, repo)
		page, err := repo.List(ctx, jobs.ListQuery{Limit: 3})
		require.NoError(t, err)
		require.NoError(t, repo.Delete(ctx, page.Jobs[0].ID))
		_, err = repo.DeleteMany(ctx, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}, Limit: 100})
		require.NoError(t, err)
		requireCountsMatchTable(t, repo)
	})
}

// TestPostgresCountsFoldWhileProcessesFinish finishes jobs from 8
// connections at once, each folding the pending count changes now and then
// as well (the triggers fold by chance), while one prunes: folds never
// lose or repeat a change, and a finish never waits for another's counter
// row.
func TestPostgresCountsFoldWhileProcessesFinish(t *testing.T) {
	t.Parallel()
	repo := testrepo.Postgres(t)
	ctx := t.Context()
	const n = 600
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = &jobs.Job{Kind: []string{"a", "b"}[i%2], Queue: []string{"q1", "q2"}[i%3%2]}
	}
	require.NoError(t, repo.Create(ctx, js...))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: fmt.Sprint("w", w), Limit: 3, LeaseDuration: time.Hour})
				if err != nil || len(got) == 0 {
					if err != nil {
						t.Error(err)
					}
					return
				}
				cs := make([]jobs.Completion, len(got))
				for k, j := range got {
					cs[k] = jobs.Completion{Lease: j.Lease(), Status: []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}[(w+k)%3]}
				}
				if err := repo.Finish(ctx, cs...); err != nil {
					t.Error(err)
					return
				}
				if i%3 == w%3 {
					if _, err := repo.DB().ExecContext(ctx, "SELECT jobs_counts_fold()"); err != nil {
						t.Error(err)
						return
					}
				}
				if w == 0 && i%10 == 0 {
					if _, err := repo.Prune(ctx, time.Now()); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	requireCountsMatchTable(t, repo)
	_, err := repo.DB().ExecContext(ctx, "SELECT jobs_counts_fold()")
	require.NoError(t, err)
	var changes int
	require.NoError(t, repo.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs_count_changes").Scan(&changes))
	require.Zero(t, changes, "a fold with no other folder takes every committed change")
	requireCountsMatchTable(t, repo)
}

// TestPostgresCountChangesStayFew finishes jobs one statement at a time
// with no explicit fold: the triggers fold often enough that the readers
// of the counts never sum many changes (each statement adds one row here;
// a fold follows about one statement in thirty, so 400 in a row without
// one has a chance of 5e-6).
func TestPostgresCountChangesStayFew(t *testing.T) {
	t.Parallel()
	repo := testrepo.Postgres(t)
	ctx := t.Context()
	const n = 800
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k"}
	}
	require.NoError(t, repo.Create(ctx, js...))
	got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: n, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, got, n)
	for _, j := range got {
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}))
	}
	var changes int
	require.NoError(t, repo.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs_count_changes").Scan(&changes))
	require.Less(t, changes, 400)
	requireCountsMatchTable(t, repo)
}
