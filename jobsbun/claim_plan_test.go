package jobsbun

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// TestPostgresClaimFindsPickedRowsByPrimaryKey checks the plan of the claim
// on a table without statistics (new and just filled, before autovacuum
// analyses it): the outer UPDATE must find the picked IDs through the
// primary key, not by scanning the partial claim index (see stillPending).
func TestPostgresClaimFindsPickedRowsByPrimaryKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sqldb, err := sql.Open("pgx", testdb.PostgresDSN(t))
	require.NoError(t, err)
	db := bun.NewDB(sqldb, pgdialect.New())
	defer db.Close()
	repo, err := New(ctx, db)
	require.NoError(t, err)
	for range 3 {
		js := make([]*jobs.Job, 1000)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
		}
		require.NoError(t, repo.Create(ctx, js...))
	}
	q := jobs.ClaimQuery{Owner: "o", Queues: []string{rules.DefaultQueue}, Kinds: []string{"k"}, Limit: 100, LeaseDuration: time.Minute}
	for range 5 {
		js, err := repo.Claim(ctx, q)
		require.NoError(t, err)
		require.Len(t, js, 100)
	}
	query, args := repo.claimSQL(q, rules.Now())
	rows, err := db.QueryContext(ctx, "EXPLAIN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan = append(plan, line)
	}
	require.NoError(t, rows.Err())
	found := false
	for i, line := range plan {
		if strings.Contains(line, "Index Cond: (id = ANY") {
			require.Contains(t, plan[i-1], "jobs_pkey", "plan:\n%s", strings.Join(plan, "\n"))
			found = true
		}
	}
	require.True(t, found, "plan:\n%s", strings.Join(plan, "\n"))
	// CC-2: the rows are locked (SKIP LOCKED) inside the subquery.
	require.Contains(t, strings.Join(plan, "\n"), "LockRows")
}

// TestPostgresReadOutputReadsOnePageOfThePrimaryKey checks the plan of
// ReadOutput on a job with many items, analysed: an index scan of
// job_output's primary key cut at the limit, without a sort (which would
// read every item after the page's start, for each page).
func TestPostgresReadOutputReadsOnePageOfThePrimaryKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sqldb, err := sql.Open("pgx", testdb.PostgresDSN(t))
	require.NoError(t, err)
	db := bun.NewDB(sqldb, pgdialect.New())
	defer db.Close()
	repo, err := New(ctx, db)
	require.NoError(t, err)
	j := &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
	require.NoError(t, repo.Create(ctx, j))
	claimed, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 1, LeaseDuration: time.Minute})
	require.NoError(t, err)
	out := make([]json.RawMessage, 5000)
	for i := range out {
		out[i] = json.RawMessage(`{"line": "text"}`)
	}
	require.NoError(t, repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: claimed[0].Lease(), Checkpoint: json.RawMessage(`1`), Output: out}))
	_, err = db.ExecContext(ctx, "ANALYZE job_output")
	require.NoError(t, err)
	rows, err := db.QueryContext(ctx, "EXPLAIN "+readOutputSQL(repo.d), j.ID.String(), 100, 1000, j.ID.String())
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan = append(plan, line)
	}
	require.NoError(t, rows.Err())
	text := strings.Join(plan, "\n")
	require.Contains(t, text, "Index Scan using job_output_pkey", text)
	require.NotContains(t, text, "Sort", text)
}
