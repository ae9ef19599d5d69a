package jobsbun

import (
	"context"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// unnestRows is the rows of an INSERT of insertUnnest: one array per
// column of insertCols, in its order.
const unnestRows = "unnest(?::uuid[], ?::text[], ?::text[], ?::int[], ?::jsonb[], ?::int[], ?::bigint[], ?::bigint[], " +
	"?::text[], ?::text[], ?::jsonb[], ?::timestamptz[], ?::timestamptz[], ?::timestamptz[]) AS _u(" + insertCols + ")"

// insertUnnestSQL is the INSERT of insertUnnest, of the rows unnestRows.
// The rank array holds -1 or the offsets of ranks (fair.go): the INSERT
// adds max(V, L + 1), read by jobs_fair_base from the table as it was
// before the statement once per queue and key, not once per row: a batch
// of 1 000 jobs of one key calls it once.
var insertUnnestSQL = "WITH _u AS (SELECT * FROM " + unnestRows + "), " +
	"_b AS (SELECT _d.q, _d.k, jobs_fair_base(_d.q, _d.k) AS b " +
	"FROM (SELECT DISTINCT queue AS q, concurrency_key AS k FROM _u WHERE fair_rank >= 0) _d) " +
	"INSERT INTO jobs (" + insertCols + ") SELECT _u.id, _u.kind, _u.queue, _u.priority, _u.payload, _u.max_attempts, _u.timeout, " +
	"CASE WHEN _u.fair_rank < 0 THEN -1 ELSE _u.fair_rank + _b.b END, " +
	"_u.unique_key, _u.concurrency_key, _u.metadata, _u.run_at, _u.created_at, _u.updated_at FROM _u " +
	"LEFT JOIN _b ON _b.q = _u.queue AND _b.k = _u.concurrency_key"

// pgFairBaseFunc creates jobs_fair_base(queue, key): max(V, L + 1) of a
// new job of the key in the queue (fair.go), read from the table as the
// calling statement sees it (STABLE). It is PL/pgSQL so that its plan is
// made once per connection: the same subqueries written into each small
// INSERT, sent as text, were planned on every call, which cost more than
// running them. Without bitmap scans: on a table that grew faster than
// autovacuum analyses it (a burst of enqueues), the planner took the
// key's index entries for one row and read them all with a bitmap scan
// and a sort to find the last (5 500 entries for a batch of 1 000 jobs),
// where the index read backwards finds it at once.
var pgFairBaseFunc = `CREATE FUNCTION jobs_fair_base(q text, k text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT SET enable_bitmapscan = off AS $$
BEGIN
	RETURN GREATEST(` + headRankSQL(sqlDialect{pg: true}, "q", "now()") + `, ` + nextKeyRankSQL("q", "k") + `);
END $$`

// insertUnnest is insertMultiRow for PostgreSQL: each chunk is one INSERT …
// SELECT FROM unnest(…) with one array per column, instead of a VALUES list
// of twelve values per row: PostgreSQL parses and plans twelve arrays far
// faster than thousands of row expressions (BenchmarkRepoCreateBatch shows
// the difference).
func insertUnnest(ctx context.Context, db bun.IDB, js []*jobs.Job, chunks [][2]int, anyKey bool, rk fairRanks) (map[uuid.UUID]bool, error) {
	var inserted map[uuid.UUID]bool
	if anyKey {
		inserted = make(map[uuid.UUID]bool, len(js))
	}
	for _, c := range chunks {
		part := js[c[0]:c[1]]
		n := len(part)
		if n == 1 {
			if err := insertOnePG(ctx, db, part[0], rk[part[0].ID], anyKey, inserted); err != nil {
				return nil, err
			}
			continue
		}
		var (
			ids, kinds, queues, payloads = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			prios, maxAttempts           = make([]int, n), make([]int, n)
			timeouts, ranks              = make([]int64, n), make([]int64, n)
			keys, metas                  = make([]*string, n), make([]*string, n)
			ckeys                        = make([]string, n)
			runAt, created, updated      = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		)
		for i, j := range part {
			ids[i], kinds[i], queues[i], payloads[i] = j.ID.String(), j.Kind, j.Queue, string(j.Payload)
			prios[i], maxAttempts[i], timeouts[i], ranks[i] = j.Priority, j.MaxAttempts, int64(j.Timeout), rk[j.ID]
			if j.UniqueKey != "" {
				keys[i] = &j.UniqueKey
			}
			if m, ok := metadataArg(j.Metadata).(string); ok {
				metas[i] = &m
			}
			ckeys[i] = j.ConcurrencyKey
			runAt[i], created[i], updated[i] = j.RunAt, j.CreatedAt, j.UpdatedAt
		}
		args := []any{pgdialect.Array(ids), pgdialect.Array(kinds), pgdialect.Array(queues), pgdialect.Array(prios),
			pgdialect.Array(payloads), pgdialect.Array(maxAttempts), pgdialect.Array(timeouts), pgdialect.Array(ranks),
			pgdialect.Array(keys), pgdialect.Array(ckeys), pgdialect.Array(metas),
			pgdialect.Array(runAt), pgdialect.Array(created), pgdialect.Array(updated)}
		query := insertUnnestSQL
		if !anyKey {
			if _, err := db.ExecContext(ctx, query, args...); err != nil {
				return nil, err
			}
			continue
		}
		rows, err := db.QueryContext(ctx, query+onConflictKey+" RETURNING id", args...)
		if err != nil {
			return nil, err
		}
		if err := scanInsertedIDs(rows, inserted); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// insertOnePG inserts one job with a VALUES row: for one job, fourteen
// one-element arrays cost more to write, send and parse than the values.
// A due job's rank is rank (its offset, 0) plus jobs_fair_base.
func insertOnePG(ctx context.Context, db bun.IDB, j *jobs.Job, rank int64, anyKey bool, inserted map[uuid.UUID]bool) error {
	query := pgInsertOneSQL
	args := insertArgs(j, rank)
	if rank >= 0 {
		query = pgInsertOneRankedSQL
		// The rank's value is the 8th (insertCols); the function's
		// arguments follow it.
		args = append(args[:8:8], append([]any{j.Queue, j.ConcurrencyKey}, args[8:]...)...)
	}
	if !anyKey {
		_, err := db.ExecContext(ctx, query, args...)
		return err
	}
	rows, err := db.QueryContext(ctx, query+onConflictKey+" RETURNING id", args...)
	if err != nil {
		return err
	}
	return scanInsertedIDs(rows, inserted)
}

// pgInsertOneSQL and pgInsertOneRankedSQL are the statements of
// insertOnePG, for a job not due yet (rank -1) and for a due one.
const (
	pgInsertOneSQL       = insertColumns + "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	pgInsertOneRankedSQL = insertColumns + "(?, ?, ?, ?, ?, ?, ?, ? + jobs_fair_base(?, ?), ?, ?, ?, ?, ?, ?)"
)
