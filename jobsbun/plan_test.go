package jobsbun

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// openTestSQLite opens a repository on a temporary SQLite file without
// jobsqlite (which imports this package).
func openTestSQLite(t *testing.T) *Repository {
	t.Helper()
	return openTestSQLitePath(t, filepath.Join(t.TempDir(), "jobs.db"))
}

// openTestSQLitePath opens a repository on the SQLite file at path.
func openTestSQLitePath(t *testing.T, path string) *Repository {
	t.Helper()
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	require.NoError(t, err)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	t.Cleanup(func() { db.Close() })
	r, err := New(t.Context(), db)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// explain returns SQLite's plan of a statement built by the repository, with
// its arguments bound the way the repository binds them.
func explain(t *testing.T, r *Repository, query string, args []any) string {
	t.Helper()
	rows, err := r.query(context.Background(), r.db, "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	return QueryPlan(t, rows)
}

// QueryPlan reads and closes the rows of an EXPLAIN QUERY PLAN, one line
// per step. It is exported for the external tests of this package.
func QueryPlan(t *testing.T, rows *sql.Rows) string {
	t.Helper()
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "\n")
}

// TestSQLiteClaimUsesThePartialIndex explains the claim statement with and
// without queue and kind filters: it walks jobs_claim_idx in claim order
// (no sort step), and finds the claimed rows by primary key.
func TestSQLiteClaimUsesThePartialIndex(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	for _, q := range []jobs.ClaimQuery{
		{Owner: "w", Limit: 10, LeaseDuration: time.Minute},
		{Owner: "w", Kinds: []string{"a", "b"}, Limit: 10, LeaseDuration: time.Minute},
		{Owner: "w", Queues: []string{"q"}, Kinds: []string{"a"}, Limit: 10, LeaseDuration: time.Minute},
	} {
		query, args := r.claimSQL(q, rules.Now())
		plan := explain(t, r, query, args)
		require.Contains(t, plan, "jobs_claim_idx", plan)
		require.NotContains(t, plan, "TEMP B-TREE", plan)
		require.NotContains(t, plan, "SCAN jobs\n", plan)
	}
}

// TestSQLiteBatchWriteFindsRowsByKey explains a fenced batch write: it
// visits the batch's rows and looks each job up by primary key.
func TestSQLiteBatchWriteFindsRowsByKey(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	table, args := r.d.batchTable(leaseCols, [][]any{{"a", "t"}, {"b", "u"}, {"c", "v"}})
	plan := explain(t, r, "WITH _data AS ("+table+") UPDATE jobs SET updated_at = updated_at "+
		"FROM _data WHERE id = d_id AND lease_token = d_token AND status = 'running' RETURNING id", args)
	require.Contains(t, plan, "SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)", plan)
}

// TestSQLiteReadOutputIsOneRangeOfThePrimaryKey explains ReadOutput's
// query: one range of job_output's primary key, in order (no sort), and
// the job by its primary key.
func TestSQLiteReadOutputIsOneRangeOfThePrimaryKey(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	plan := explain(t, r, readOutputSQL(r.d), []any{"x", int64(0), 10, "x"})
	require.Contains(t, plan, "SEARCH job_output USING PRIMARY KEY (job_id=? AND seq>?)", plan)
	require.Contains(t, plan, "SEARCH jobs USING", plan)
	require.NotContains(t, plan, "TEMP B-TREE", plan)
}

// TestSQLiteFairHeadsUseTheirIndexes explains the statements that read
// the fair ranks' heads (the batch read, the single INSERT, promote): V
// seeks jobs_fair_head_idx for the jobs with a key and jobs_fair_idx for
// those without, L seeks jobs_fair_idx, all in order (no sort) and none
// scans the table.
func TestSQLiteFairHeadsUseTheirIndexes(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	now := rules.Now()
	query, args := r.headsSQL([]admit.QueueKey{{Queue: "q", Key: "a"}, {Queue: "q", Key: ""}}, now)
	insert := "INSERT" + keylessInsert + keylessFoldedRow
	insertArgs := []any{"id", "k", "q", 0, "{}", 3, 0, 0, "q", boundTime(now), "q", boundTime(now), "q", "", boundTime(now), boundTime(now), boundTime(now)}
	for name, st := range map[string]struct {
		query string
		args  []any
	}{"heads": {query, args}, "insert": {insert, insertArgs}, "promote": {r.promoteSQL(), []any{now, now, now}}} {
		plan := explain(t, r, st.query, st.args)
		require.Contains(t, plan, "SEARCH _rh USING INDEX jobs_fair_head_idx (queue=?", name+"\n"+plan)
		require.Contains(t, plan, "SEARCH _rl USING INDEX jobs_fair_idx (queue=? AND concurrency_key=?", name+"\n"+plan)
		require.NotContains(t, plan, "TEMP B-TREE", name+"\n"+plan)
		require.NotRegexp(t, `SCAN (jobs|_r[hlk])\b`, plan, name+"\n"+plan)
	}
}

// TestSQLiteLimitedClaimUsesItsIndexes explains the statements of a
// limited claim: the walk of pending jobs follows jobs_claim_idx in claim
// order, and the running jobs are counted from jobs_rescue_idx (the
// running rows).
func TestSQLiteLimitedClaimUsesItsIndexes(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	q := jobs.ClaimQuery{Owner: "w", Kinds: []string{"a", "b"}, Limit: 10, LeaseDuration: time.Minute}
	closed := []admit.Scope{{Type: admit.KindScope, Name: "b"}}
	full := map[admit.Scope][]string{{Type: admit.KindScope, Name: "a"}: {"u1", "u2"}}
	level := 1
	for _, w := range []struct {
		level *int
		after *walkPos
		want  string
	}{
		{nil, nil, "SCAN jobs USING COVERING INDEX jobs_claim_idx"},
		{nil, &walkPos{priority: 1}, "SEARCH jobs USING COVERING INDEX jobs_claim_idx (priority<?)"},
		{&level, &walkPos{priority: 1, rank: 2, runAt: rules.Now(), id: "x"}, "SEARCH jobs USING COVERING INDEX jobs_claim_idx (priority=? AND fair_rank>? AND fair_rank<?)"},
	} {
		query, args := r.walkSQL(q, rules.Now(), closed, full, w.level, w.after, 70, 256)
		plan := explain(t, r, query, args)
		require.Contains(t, plan, w.want, plan)
		require.NotContains(t, plan, "TEMP B-TREE", plan)
	}
	for _, p := range []struct {
		queues []string
		after  *admit.QueueKey
		within bool
		want   string
	}{
		{nil, nil, false, "SCAN jobs USING COVERING INDEX jobs_fair_idx"},
		{nil, &admit.QueueKey{Queue: "q", Key: "u"}, true, "SEARCH jobs USING COVERING INDEX jobs_fair_idx (queue=? AND concurrency_key>?)"},
		{nil, &admit.QueueKey{Queue: "q", Key: "u"}, false, "SEARCH jobs USING COVERING INDEX jobs_fair_idx (queue>?)"},
		{[]string{"q", "r"}, &admit.QueueKey{Queue: "q", Key: "u"}, true, "SEARCH jobs USING COVERING INDEX jobs_fair_idx (queue=? AND concurrency_key>?)"},
	} {
		query, args := pairSQL(p.queues, p.after, p.within)
		plan := explain(t, r, query, args)
		require.Contains(t, plan, p.want, plan)
		require.NotContains(t, plan, "TEMP B-TREE", plan)
	}
	query, args := runningSQL([]admit.Scope{{Type: admit.KindScope, Name: "a"}, {Type: admit.QueueScope, Name: "q"}})
	plan := explain(t, r, query, args)
	require.Contains(t, plan, "jobs_rescue_idx", plan)
}

// TestSQLiteWalkSeeksToItsPosition times a page of the limited walk that
// starts near the end of 20 000 jobs of one priority against one that
// starts at the beginning: the seek must start at the page's position,
// not at the start of the priority (the plan text cannot tell which of
// two lower bounds on fair_rank SQLite seeks with).
func TestSQLiteWalkSeeksToItsPosition(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	for range 20 {
		js := make([]*jobs.Job, 1000)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k", ConcurrencyKey: "a"}
		}
		require.NoError(t, r.Create(ctx, js...))
	}
	q := jobs.ClaimQuery{Owner: "w", Kinds: []string{"k"}, Limit: 10, LeaseDuration: time.Minute}
	level := 0
	page := func(rank int64) time.Duration {
		after := &walkPos{rank: rank, runAt: rules.Now().Add(-time.Hour), id: "0"}
		query, args := r.walkSQL(q, rules.Now(), nil, nil, &level, after, rank+100, 256)
		best := time.Hour
		for range 5 {
			start := time.Now()
			rows, err := r.query(ctx, r.db, query, args...)
			require.NoError(t, err)
			n := 0
			for rows.Next() {
				n++
			}
			require.NoError(t, rows.Close())
			require.Equal(t, 101, n) // ranks rank to rank+100
			best = min(best, time.Since(start))
		}
		return best
	}
	early, late := page(0), page(19000)
	require.Less(t, late, 5*early, "a late page costs like an early one (early %v, late %v)", early, late)
}

// TestSQLiteStatsReadsNoFinishedJob explains Stats' statement: finished
// jobs come from jobs_counts, pending and running ones through their
// partial indexes, and nothing walks the table (2.7 s at a million
// finished jobs).
func TestSQLiteStatsReadsNoFinishedJob(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	query, args := r.d.countSQL(time.Now())
	plan := explain(t, r, query, args)
	for _, w := range []string{"jobs_counts", "jobs_claim_idx", "jobs_promote_idx", "jobs_rescue_idx"} {
		require.Contains(t, plan, w, plan)
	}
	requireNoFullScan(t, plan, "stats")
}

// requireNoFullScan fails when a plan walks the table, the primary key
// or an index of all finished jobs (a search of the primary key by id is
// how the page's rows are read).
func requireNoFullScan(t *testing.T, plan string, what any) {
	t.Helper()
	for _, line := range strings.Split(plan, "\n") {
		line = strings.TrimSpace(line)
		require.NotEqual(t, "SCAN jobs", line, "%+v\n%s", what, plan)
		if strings.HasPrefix(line, "SCAN jobs") {
			for _, idx := range []string{"sqlite_autoindex", "jobs_list_", "jobs_prune_idx"} {
				require.NotContains(t, line, idx, "%+v\n%s", what, plan)
			}
		}
	}
}
