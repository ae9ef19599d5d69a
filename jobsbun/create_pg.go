package jobsbun

import (
	"context"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// insertUnnestSQL is the INSERT of insertUnnest: one array per column of
// insertCols, in its order.
const insertUnnestSQL = "INSERT INTO jobs (" + insertCols + ") SELECT * FROM unnest(?::uuid[], ?::text[], ?::text[], " +
	"?::int[], ?::jsonb[], ?::int[], ?::bigint[], ?::text[], ?::jsonb[], ?::timestamptz[], ?::timestamptz[], ?::timestamptz[])"

// insertUnnest is insertMultiRow for PostgreSQL: each chunk is one INSERT …
// SELECT FROM unnest(…) with one array per column, instead of a VALUES list
// of twelve values per row: PostgreSQL parses and plans twelve arrays far
// faster than thousands of row expressions (BenchmarkRepoCreateBatch shows
// the difference).
func insertUnnest(ctx context.Context, db bun.IDB, js []*jobs.Job, chunks [][2]int, anyKey bool) (map[uuid.UUID]bool, error) {
	var inserted map[uuid.UUID]bool
	if anyKey {
		inserted = make(map[uuid.UUID]bool, len(js))
	}
	for _, c := range chunks {
		part := js[c[0]:c[1]]
		n := len(part)
		var (
			ids, kinds, queues, payloads = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			prios, maxAttempts           = make([]int, n), make([]int, n)
			timeouts                     = make([]int64, n)
			keys, metas                  = make([]*string, n), make([]*string, n)
			runAt, created, updated      = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		)
		for i, j := range part {
			ids[i], kinds[i], queues[i], payloads[i] = j.ID.String(), j.Kind, j.Queue, string(j.Payload)
			prios[i], maxAttempts[i], timeouts[i] = j.Priority, j.MaxAttempts, int64(j.Timeout)
			if j.UniqueKey != "" {
				keys[i] = &j.UniqueKey
			}
			if m, ok := metadataArg(j.Metadata).(string); ok {
				metas[i] = &m
			}
			runAt[i], created[i], updated[i] = j.RunAt, j.CreatedAt, j.UpdatedAt
		}
		args := []any{pgdialect.Array(ids), pgdialect.Array(kinds), pgdialect.Array(queues), pgdialect.Array(prios),
			pgdialect.Array(payloads), pgdialect.Array(maxAttempts), pgdialect.Array(timeouts), pgdialect.Array(keys),
			pgdialect.Array(metas), pgdialect.Array(runAt), pgdialect.Array(created), pgdialect.Array(updated)}
		if !anyKey {
			if _, err := db.ExecContext(ctx, insertUnnestSQL, args...); err != nil {
				return nil, err
			}
			continue
		}
		rows, err := db.QueryContext(ctx, insertUnnestSQL+onConflictKey+" RETURNING id", args...)
		if err != nil {
			return nil, err
		}
		if err := scanInsertedIDs(rows, inserted); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}
