package jobsbun_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// TestSQLiteTwoRepositoriesOneFile runs claimers on two repositories that
// share one file, as two processes would (each has its own write gate, so
// they meet only at SQLite's lock): every job is claimed exactly once and no
// busy error reaches a caller.
func TestSQLiteTwoRepositoriesOneFile(t *testing.T) {
	t.Parallel()
	path := testdb.SQLitePath(t)
	repos := make([]*jobsbun.Repository, 2)
	for i := range repos {
		r, err := jobsqlite.Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		repos[i] = r
	}
	const n = 400
	var js []*jobs.Job
	for i := range n {
		js = append(js, newJob("k", i))
	}
	require.NoError(t, repos[0].Create(t.Context(), js...))

	var mu sync.Mutex
	seen := map[uuid.UUID]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		repo := repos[w%2]
		wg.Go(func() {
			for {
				got, err := repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w", Limit: 7, LeaseDuration: time.Minute})
				if !assertNoError(t, err) || len(got) == 0 {
					return
				}
				cs := make([]jobs.Completion, len(got))
				for i, j := range got {
					cs[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}
				}
				if !assertNoError(t, repo.Finish(t.Context(), cs...)) {
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
	require.Len(t, seen, n)
	for id, c := range seen {
		require.Equal(t, 1, c, id)
	}
}

// TestSQLiteBusyIsRetriedThenUnavailable holds the write lock from another
// connection: a write waits and succeeds once the lock is released, and
// gives up with ErrUnavailable after the repository's busy timeout.
func TestSQLiteBusyIsRetriedThenUnavailable(t *testing.T) {
	t.Parallel()
	path := testdb.SQLitePath(t)
	repo := func(total time.Duration) *jobsbun.Repository {
		r, err := jobsqlite.Open(t.Context(), path, jobsqlite.WithBusyTimeout(5*time.Millisecond),
			jobsqlite.WithRepositoryOptions(jobsbun.WithBusyRetry(total)))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		return r
	}
	patient, impatient := repo(10*time.Second), repo(100*time.Millisecond)

	other, err := sql.Open(sqliteshim.ShimName, "file:"+path)
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	require.NoError(t, err)

	err = impatient.Create(t.Context(), newJob("k", 1))
	require.ErrorIs(t, err, jobs.ErrUnavailable)

	done := make(chan error, 1)
	go func() { done <- patient.Create(t.Context(), newJob("k", 2)) }()
	require.Never(t, func() bool { return len(done) > 0 }, 50*time.Millisecond, 5*time.Millisecond,
		"the write waits while another connection holds the lock")
	_, err = conn.ExecContext(t.Context(), "COMMIT")
	require.NoError(t, err)
	require.NoError(t, <-done)
	st, err := patient.Stats(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Total)
}

func TestRunInTxCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	repo := testrepo.SQLite(t)
	ctx := t.Context()
	_, err := repo.DB().ExecContext(ctx, "CREATE TABLE orders (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	require.NoError(t, jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id) VALUES (1)"); err != nil {
			return err
		}
		return repo.CreateTx(ctx, tx, newJob("ship", 1))
	}))
	var n int
	require.NoError(t, repo.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM orders").Scan(&n))
	require.Equal(t, 1, n)
	st, err := repo.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Total)

	require.NoError(t, repo.Close())
	require.NoError(t, repo.Close(), "idempotent")
	_, err = repo.Get(ctx, uuid.New())
	require.ErrorIs(t, err, jobs.ErrClosed)
	require.ErrorIs(t, repo.Create(ctx, newJob("k", 1)), jobs.ErrClosed)
	_, err = repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Second})
	require.ErrorIs(t, err, jobs.ErrClosed)
}
