package jobsbun_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

// requireCountsMatchTable compares Stats with a GROUP BY of the jobs table.
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
	got.Paused = nil
	require.Equal(t, want, got)
}

// TestPostgresCountsFoldWhileProcessesFinish finishes jobs from 8
// connections at once, each folding the pending count changes now and then
// as well (the triggers fold by chance): folds never lose or repeat a
// change, and a finish never waits for another's counter row.
func TestPostgresCountsFoldWhileProcessesFinish(t *testing.T) {
	t.Parallel()
	repo := testrepo.Postgres(t)
	ctx := t.Context()
	const n = 400
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = &jobs.Job{Kind: []string{"a", "b"}[i%2], Queue: []string{"q1", "q2"}[i%3%2]}
	}
	require.NoError(t, repo.Create(ctx, js...))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 3, LeaseDuration: time.Hour})
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

// TestSQLiteCountsFollowRawSQL: the counts follow writes made with SQL of
// one's own too, since triggers keep them (a finished job deleted, a
// finished job set back to pending, a job inserted finished).
func TestSQLiteCountsFollowRawSQL(t *testing.T) {
	t.Parallel()
	repo := testrepo.SQLite(t)
	ctx := t.Context()
	js := []*jobs.Job{{Kind: "a"}, {Kind: "a"}, {Kind: "b"}}
	require.NoError(t, repo.Create(ctx, js...))
	_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET status = 'failed', finished_at = updated_at")
	require.NoError(t, err)
	requireCountsMatchTable(t, repo)
	_, err = repo.DB().ExecContext(ctx, "UPDATE jobs SET status = 'pending', finished_at = NULL WHERE id = ?", js[0].ID.String())
	require.NoError(t, err)
	_, err = repo.DB().ExecContext(ctx, "UPDATE jobs SET queue = 'other' WHERE id = ?", js[1].ID.String())
	require.NoError(t, err)
	_, err = repo.DB().ExecContext(ctx, "DELETE FROM jobs WHERE id = ?", js[2].ID.String())
	require.NoError(t, err)
	requireCountsMatchTable(t, repo)
	_, err = repo.DB().ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, status, payload, max_attempts, run_at, created_at, updated_at, finished_at) "+
		"SELECT 'x', kind, queue, 'canceled', payload, max_attempts, run_at, created_at, updated_at, updated_at FROM jobs WHERE id = ?", js[1].ID.String())
	require.NoError(t, err)
	requireCountsMatchTable(t, repo)
}
