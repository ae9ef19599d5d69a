package jobsbun_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// queryLog records the SQL that bun sends, to EXPLAIN the repository's own
// queries.
type queryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }
func (l *queryLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, e.Query)
}

func (l *queryLog) last(prefix string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.queries) - 1; i >= 0; i-- {
		if strings.HasPrefix(l.queries[i], prefix) {
			return l.queries[i]
		}
	}
	return ""
}

func explainSQLite(t *testing.T, db *bun.DB, query string) string {
	t.Helper()
	require.NotEmpty(t, query)
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query)
	require.NoError(t, err)
	return jobsbun.QueryPlan(t, rows)
}

// loggedSQLite returns a repository on a new SQLite database holding two
// pending jobs, the database, and the log of the SQL that bun sends.
func loggedSQLite(t *testing.T) (*bun.DB, *queryLog, *jobsbun.Repository) {
	t.Helper()
	ctx := t.Context()
	db, err := jobsqlite.OpenDB(ctx, testdb.SQLitePath(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	log := &queryLog{}
	repo, err := jobsbun.New(ctx, db.WithQueryHook(log))
	require.NoError(t, err)
	require.NoError(t, repo.Create(ctx, newJob("k", 1), newJob("k", 2)))
	return db, log, repo
}

// TestSQLiteQueriesUseTheirIndexes explains the repository's own
// cancel-poll, rescue and prune statements and checks each uses its index
// (the claim, which bypasses bun's hooks, is explained in
// plan_test.go).
func TestSQLiteQueriesUseTheirIndexes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, log, repo := loggedSQLite(t)
	_, err := repo.CancelRequests(ctx, "w")
	require.NoError(t, err)
	plan := explainSQLite(t, db, log.last("SELECT id FROM jobs WHERE status = 'running' AND cancel_requested"))
	require.Contains(t, plan, "jobs_cancel_idx", plan)

	_, err = repo.RescueExpired(ctx, 10)
	require.NoError(t, err)
	plan = explainSQLite(t, db, log.last("UPDATE jobs SET status = CASE WHEN cancel_requested"))
	require.Contains(t, plan, "jobs_rescue_idx", plan)

	_, err = repo.Prune(ctx, time.Now())
	require.NoError(t, err)
	plan = explainSQLite(t, db, log.last("DELETE FROM jobs WHERE"))
	require.Contains(t, plan, "jobs_prune_idx", plan)
}

// TestSQLiteWritesBuildNoTemporaryTables checks the bytecode of an insert
// and of a status change: SQLite evaluates the CHECK constraints for every
// row written, and an IN list there builds a temporary table each time
// (see schemaChecks), which cost a quarter of a batch insert.
func TestSQLiteWritesBuildNoTemporaryTables(t *testing.T) {
	t.Parallel()
	repo := testrepo.SQLite(t)
	for _, q := range []string{
		"INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at) " +
			"VALUES ('a', 'k', 'q', '{}', 1, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')",
		"UPDATE jobs SET status = 'succeeded', finished_at = '2026-01-01 00:00:00+00:00' WHERE id = 'a'",
	} {
		rows, err := repo.DB().QueryContext(t.Context(), "EXPLAIN "+q)
		require.NoError(t, err)
		// The statement's program, then one per trigger, each from an
		// Init whose P4 names it; the triggers of dependencies and
		// batches (schema_deps.go) run only for jobs that have
		// dependents, for jobs of batches, and for canceled batches.
		var ops []string
		skip := false
		for rows.Next() {
			var addr, p1, p2, p3, p5 any
			var op, p4, comment any
			require.NoError(t, rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment))
			if fmt.Sprint(op) == "Init" {
				skip = strings.Contains(fmt.Sprint(p4), "jobs_deps_") || strings.Contains(fmt.Sprint(p4), "jobs_batch_")
			}
			if !skip {
				ops = append(ops, fmt.Sprint(op))
			}
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Contains(t, ops, "Insert", q) // the statement was explained
		require.NotContains(t, ops, "OpenEphemeral", q)
	}
}

func TestMigrationIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	path := testdb.SQLitePath(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			repo, err := jobsqlite.Open(t.Context(), path)
			if assertNoError(t, err) {
				assertNoError(t, repo.Close())
			}
		})
	}
	wg.Wait()
	repo := testrepo.SQLite(t)
	_ = repo
	db, err := jobsqlite.OpenDB(t.Context(), path)
	require.NoError(t, err)
	defer db.Close()
	var n, v int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*), MAX(version) FROM jobs_schema_version").Scan(&n, &v))
	require.GreaterOrEqual(t, n, 3, "the steps up to flow control at least")
	require.Equal(t, v, n, "each step once")
	_, err = db.ExecContext(t.Context(), "INSERT INTO jobs_schema_version (version, name, applied_at) VALUES (99, 'future', 'x')")
	require.NoError(t, err)
	_, err = jobsbun.New(t.Context(), db)
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

func TestSchemaChecksRefuseImpossibleRows(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		j := newJob("k", 1)
		require.NoError(t, repo.Create(ctx, j))
		for _, set := range []string{
			"status = 'weird'",
			"progress_fraction = 1.5",
			"max_attempts = 0",
			"status = 'succeeded'", // without finished_at
			"finished_at = created_at",
		} {
			_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET "+set+" WHERE id = ?", j.ID.String())
			require.Error(t, err, set)
		}
	})
}
