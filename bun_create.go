package jobs

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds Create and CreateTx of [BunRepository]: validation, then
// multi-row INSERT statements (with ON CONFLICT DO NOTHING when unique keys
// are involved) in one transaction.

// Create implements [JobRepository.Create]. It inserts the jobs with
// multi-row INSERT statements in one transaction. The write has started
// once it holds the repository's write lock (SQLite) or a connection
// (PostgreSQL); from then on ctx ending does not cancel it, and it is
// abandoned only 10 seconds after ctx ends. A write that fails without
// saying whether it committed (a lost connection, say) is settled by
// reading the jobs back by their IDs, which Create assigns before it
// writes: found means stored. Not found means not stored on SQLite; on
// PostgreSQL, where the server may still be running the statement, it is
// [ErrOutcomeUnknown], as is a failed read.
func (r *BunRepository) Create(ctx context.Context, jobs ...*Job) error {
	return r.create(ctx, nil, jobs)
}

// CreateTx implements [JobRepository.CreateTx]: the jobs are inserted with
// tx and become visible when tx commits. tx may be a bun.Tx, a bun.Conn or
// a *bun.DB of the same database.
func (r *BunRepository) CreateTx(ctx context.Context, tx bun.IDB, jobs ...*Job) error {
	if tx == nil {
		return invalid("create", "tx is nil")
	}
	if db, ok := tx.(*bun.DB); ok && db == r.db {
		tx = nil
	}
	return r.create(ctx, tx, jobs)
}

// insertChunkRows and insertChunkBytes bound one INSERT statement.
const (
	insertChunkRows  = 1000
	insertChunkBytes = 4 << 20
)

func (r *BunRepository) create(ctx context.Context, idb bun.IDB, jobs []*Job) error {
	const op = "create"
	if r.closed.Load() {
		return newError(ErrClosed, op, uuid.Nil, "repository is closed")
	}
	if len(jobs) == 0 {
		return nil
	}
	saved := make([]Job, len(jobs))
	for i, j := range jobs {
		if j == nil {
			return invalid(op, "job %d is nil", i)
		}
		saved[i] = *j
	}
	restore := func() {
		for i, j := range jobs {
			*j = saved[i]
		}
	}
	t := now()
	for _, j := range jobs {
		if err := prepareNew(j, t, r.maxPayload); err != nil {
			restore()
			return err
		}
		j.RunAt = j.RunAt.Truncate(time.Microsecond)
	}
	chunks, anyKey := chunkJobs(jobs)
	// Several statements need a transaction to be all or nothing.
	multi := len(chunks) > 1 || anyKey
	var dups map[int]*Job
	fn := func(ctx context.Context, db bun.IDB) error {
		var err error
		dups, err = r.insert(ctx, db, jobs, chunks, anyKey)
		return err
	}
	var err error
	switch {
	case idb == nil && len(jobs) == 1 && !anyKey && r.d.bindsArgs():
		err = r.writeCreate(ctx, op, false, jobs, &dups, func(ctx context.Context, _ bun.IDB) error { return r.insertOneBound(ctx, jobs[0]) })
	case idb == nil && !anyKey && r.d.bindsArgs():
		err = r.writeCreate(ctx, op, true, jobs, &dups, func(ctx context.Context, db bun.IDB) error { return r.insertBound(ctx, db, jobs) })
	case idb == nil:
		err = r.writeCreate(ctx, op, multi, jobs, &dups, fn)
	case multi:
		err = storageError(op, uuid.Nil, idb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) }))
	default:
		err = storageError(op, uuid.Nil, fn(ctx, idb))
	}
	if err != nil {
		restore()
		return err
	}
	for i, existing := range dups {
		*jobs[i] = *existing
		jobs[i].Duplicate = true
	}
	return nil
}

// chunkJobs splits jobs into index ranges [lo, hi) for INSERT statements and
// reports whether any job has a unique key.
func chunkJobs(jobs []*Job) (chunks [][2]int, anyKey bool) {
	lo, size := 0, 0
	for i, j := range jobs {
		anyKey = anyKey || j.UniqueKey != ""
		if i > lo && (i-lo >= insertChunkRows || size+len(j.Payload) > insertChunkBytes) {
			chunks = append(chunks, [2]int{lo, i})
			lo, size = i, 0
		}
		size += len(j.Payload) + 200
	}
	return append(chunks, [2]int{lo, len(jobs)}), anyKey
}

// insert writes the prepared jobs and returns, by index, the existing jobs
// that took the place of those whose unique key was already used.
func (r *BunRepository) insert(ctx context.Context, db bun.IDB, jobs []*Job, chunks [][2]int, anyKey bool) (map[int]*Job, error) {
	insertRows := insertMultiRow
	if r.d.pg {
		insertRows = insertUnnest // bun_create_pg.go
	}
	inserted, err := insertRows(ctx, db, jobs, chunks, anyKey)
	if err != nil {
		return nil, err
	}
	if !anyKey || len(inserted) == len(jobs) {
		return nil, nil
	}
	var left []int // indexes of the jobs whose key was taken
	for i, j := range jobs {
		if !inserted[j.ID] {
			left = append(left, i)
		}
	}
	dups := make(map[int]*Job, len(left))
	for try := 0; ; try++ {
		vanished, err := r.keyHolders(ctx, db, jobs, left, dups)
		if err != nil {
			return nil, err
		}
		if len(vanished) == 0 {
			return dups, nil
		}
		if try == maxVanishedRetries {
			return nil, newError(ErrInternal, "create", jobs[vanished[0]].ID, "job with unique key vanished during create")
		}
		// On PostgreSQL (READ COMMITTED) the job that held the key may
		// have been pruned between the INSERT and the SELECT: the key is
		// free now, so insert those jobs again. Each try either inserts
		// or conflicts with a newer holder, which the next SELECT sees.
		retry := make([]*Job, len(vanished))
		for k, i := range vanished {
			retry[k] = jobs[i]
		}
		chunks, _ := chunkJobs(retry)
		inserted, err := insertRows(ctx, db, retry, chunks, true)
		if err != nil {
			return nil, err
		}
		left = left[:0]
		for _, i := range vanished {
			if !inserted[jobs[i].ID] {
				left = append(left, i)
			}
		}
		if len(left) == 0 {
			return dups, nil
		}
	}
}

// maxVanishedRetries bounds how often insert inserts again the jobs whose
// unique key's holder vanished under it.
const maxVanishedRetries = 5

// keyHolders reads the jobs that hold the unique keys of jobs[i] for each i
// in idx and stores copies of them in dups by index. It returns the indexes
// whose key no job holds any more.
func (r *BunRepository) keyHolders(ctx context.Context, db bun.IDB, jobs []*Job, idx []int, dups map[int]*Job) ([]int, error) {
	keys := make([]string, len(idx))
	for k, i := range idx {
		keys[k] = jobs[i].UniqueKey
	}
	rows, err := db.QueryContext(ctx, "SELECT "+r.d.jobColumns()+" FROM jobs WHERE unique_key IN (?)", bun.List(keys))
	if err != nil {
		return nil, err
	}
	existing, err := scanJobs(rows)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]*Job, len(existing))
	for _, e := range existing {
		byKey[e.UniqueKey] = e
	}
	var vanished []int
	for _, i := range idx {
		e := byKey[jobs[i].UniqueKey]
		if e == nil {
			vanished = append(vanished, i)
			continue
		}
		c := *e
		dups[i] = &c
	}
	return vanished, nil
}

// The columns an INSERT of jobs writes, in the order of insertArgs:
// insertColsHead, unique_key, insertColsTail. Every INSERT statement of
// jobs builds its column list from these two constants; the others take
// their column defaults.
const (
	insertColsHead = "id, kind, queue, priority, payload, max_attempts, timeout"
	insertColsTail = "run_at, created_at, updated_at"
	insertCols     = insertColsHead + ", unique_key, " + insertColsTail
)

// insertColumns is the multi-row INSERT of jobs up to its rows.
const insertColumns = "INSERT INTO jobs (" + insertCols + ") VALUES "

const onConflictKey = " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING"

// insertMultiRow inserts with one multi-row INSERT per chunk and returns the
// IDs it inserted when anyKey is set (nil otherwise).
func insertMultiRow(ctx context.Context, db bun.IDB, jobs []*Job, chunks [][2]int, anyKey bool) (map[uuid.UUID]bool, error) {
	var b strings.Builder
	var inserted map[uuid.UUID]bool
	if anyKey {
		inserted = make(map[uuid.UUID]bool, len(jobs))
	}
	for _, c := range chunks {
		b.Reset()
		args := make([]any, 0, 11*(c[1]-c[0]))
		b.WriteString(insertColumns)
		for i, j := range jobs[c[0]:c[1]] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, insertArgs(j)...)
		}
		if !anyKey {
			if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
				return nil, err
			}
			continue
		}
		b.WriteString(onConflictKey + " RETURNING id")
		rows, err := db.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, err
		}
		if err := scanInsertedIDs(rows, inserted); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// scanInsertedIDs reads the ids of an INSERT … RETURNING id into inserted
// and closes rows.
func scanInsertedIDs(rows *sql.Rows, inserted map[uuid.UUID]bool) error {
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		inserted[id] = true
	}
	return errors.Join(rows.Err(), rows.Close())
}

// insertArgs are the values of one job for insertColumns.
func insertArgs(j *Job) []any {
	var key any
	if j.UniqueKey != "" {
		key = j.UniqueKey
	}
	return []any{j.ID.String(), j.Kind, j.Queue, j.Priority, string(j.Payload), j.MaxAttempts,
		int64(j.Timeout), key, j.RunAt, j.CreatedAt, j.UpdatedAt}
}
