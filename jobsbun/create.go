package jobsbun

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds Create and CreateTx of [Repository]: validation, then
// multi-row INSERT statements (with ON CONFLICT DO NOTHING when unique keys
// are involved) in one transaction.

// Create implements [jobs.JobRepository.Create]. It inserts the jobs with
// multi-row INSERT statements in one transaction. The write has started
// once it holds the repository's write lock (SQLite) or a connection
// (PostgreSQL); from then on ctx ending does not cancel it, and it is
// abandoned only 10 seconds after ctx ends. A write that fails without
// saying whether it committed (a lost connection, say) is settled by
// reading the jobs back by their IDs, which Create assigns before it
// writes: found means stored. Not found means not stored on SQLite; on
// PostgreSQL, where the server may still be running the statement, it is
// [jobs.ErrOutcomeUnknown], as is a failed read.
func (r *Repository) Create(ctx context.Context, js ...*jobs.Job) error {
	return r.create(ctx, nil, js)
}

// CreateTx implements [jobs.JobRepository.CreateTx]: tx must be a bun.Tx
// (or a *bun.Tx) on this repository's database; the jobs are inserted with
// it and become visible when it commits. Anything else, a *bun.DB or a
// bun.Conn included, is [jobs.ErrInvalidArgument] and writes nothing: a job
// meant to share the caller's transaction is never written outside it.
// When tx was begun by [RunInTx] and ctx is the context RunInTx passed in,
// the runners of this process start the jobs as soon as tx commits.
func (r *Repository) CreateTx(ctx context.Context, tx any, js ...*jobs.Job) error {
	var idb bun.IDB
	switch t := tx.(type) {
	case bun.Tx:
		if t.Tx != nil {
			idb = t
		}
	case *bun.Tx:
		if t != nil && t.Tx != nil {
			idb = *t
		}
	}
	if idb == nil {
		return invalid("create", "tx is a %T, not a bun.Tx: CreateTx writes only inside the caller's transaction", tx)
	}
	if err := r.create(ctx, idb, js); err != nil {
		return err
	}
	afterCommit(ctx, r)
	return nil
}

// insertChunkRows and insertChunkBytes bound one INSERT statement.
const (
	insertChunkRows  = 1000
	insertChunkBytes = 4 << 20
)

func (r *Repository) create(ctx context.Context, idb bun.IDB, js []*jobs.Job) error {
	const op = "create"
	if r.closed.Load() {
		return newError(jobs.ErrClosed, op, uuid.Nil, "repository is closed")
	}
	if len(js) == 0 {
		return nil
	}
	saved := make([]jobs.Job, len(js))
	for i, j := range js {
		if j == nil {
			return invalid(op, "job %d is nil", i)
		}
		saved[i] = *j
	}
	restore := func() {
		for i, j := range js {
			*j = saved[i]
		}
	}
	deps, err := rules.Deps(js, depsOf, jobID)
	if err != nil {
		return invalid(op, "%v", err)
	}
	t := rules.Now()
	for _, j := range js {
		if err := j.Prepare(t, r.maxPayload); err != nil {
			restore()
			return err
		}
		j.RunAt = j.RunAt.Truncate(time.Microsecond)
	}
	chunks, anyKey, anyMeta := chunkJobs(js)
	// Several statements need a transaction to be all or nothing.
	multi := len(chunks) > 1 || anyKey || deps != nil
	// The prepared statements of SQLite (stmt.go) write neither unique
	// keys, metadata, concurrency keys nor dependencies.
	bound := idb == nil && !anyKey && !anyMeta && deps == nil && r.d.bindsArgs() &&
		!slices.ContainsFunc(js, func(j *jobs.Job) bool { return j.ConcurrencyKey != "" })
	var dups map[int]*jobs.Job
	var links map[int]linked
	fn := func(ctx context.Context, db bun.IDB) error {
		rk, err := r.ranks(ctx, db, js, t, r.d.pg)
		if err != nil {
			return err
		}
		if dups, err = r.insert(ctx, db, js, chunks, anyKey, rk); err != nil || deps == nil {
			return err
		}
		links, err = r.link(ctx, db, js, deps, dups, t) // deps.go
		return err
	}
	switch {
	case bound && len(js) == 1:
		err = r.writeCreate(ctx, op, false, js, &dups, func(ctx context.Context, db bun.IDB) error {
			rk, err := r.ranks(ctx, db, js, t, true)
			if err != nil {
				return err
			}
			return r.insertOneBound(ctx, js[0], rk, t)
		})
	case bound:
		err = r.writeCreate(ctx, op, true, js, &dups, func(ctx context.Context, db bun.IDB) error {
			rk, err := r.ranks(ctx, db, js, t, false)
			if err != nil {
				return err
			}
			return r.insertBound(ctx, db, js, rk)
		})
	case idb == nil:
		err = r.writeCreate(ctx, op, multi, js, &dups, fn)
	case multi:
		err = storageError(op, uuid.Nil, idb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) }))
	default:
		err = storageError(op, uuid.Nil, fn(ctx, idb))
	}
	if err != nil {
		restore()
		return err
	}
	applyLinks(js, links, t)
	for i, existing := range dups {
		*js[i] = *existing
		js[i].Duplicate = true
	}
	return nil
}

// chunkJobs splits jobs into index ranges [lo, hi) for INSERT statements and
// reports whether any job has a unique key, and whether any has metadata.
func chunkJobs(js []*jobs.Job) (chunks [][2]int, anyKey, anyMeta bool) {
	lo, size := 0, 0
	for i, j := range js {
		anyKey = anyKey || j.UniqueKey != ""
		anyMeta = anyMeta || len(j.Metadata) > 0
		n := len(j.Payload) + metadataSize(j.Metadata)
		if i > lo && (i-lo >= insertChunkRows || size+n > insertChunkBytes) {
			chunks = append(chunks, [2]int{lo, i})
			lo, size = i, 0
		}
		size += n + 200
	}
	return append(chunks, [2]int{lo, len(js)}), anyKey, anyMeta
}

// insert writes the prepared jobs and returns, by index, the existing jobs
// that took the place of those whose unique key was already used.
func (r *Repository) insert(ctx context.Context, db bun.IDB, js []*jobs.Job, chunks [][2]int, anyKey bool, rk fairRanks) (map[int]*jobs.Job, error) {
	insertRows := insertMultiRow
	if r.d.pg {
		insertRows = insertUnnest // create_pg.go
	}
	inserted, err := insertRows(ctx, db, js, chunks, anyKey, rk)
	if err != nil {
		return nil, err
	}
	if !anyKey || len(inserted) == len(js) {
		return nil, nil
	}
	var left []int // indexes of the jobs whose key was taken
	for i, j := range js {
		if !inserted[j.ID] {
			left = append(left, i)
		}
	}
	dups := make(map[int]*jobs.Job, len(left))
	for try := 0; ; try++ {
		vanished, err := r.keyHolders(ctx, db, js, left, dups)
		if err != nil {
			return nil, err
		}
		if len(vanished) == 0 {
			return dups, nil
		}
		if try == maxVanishedRetries {
			return nil, newError(codeInternal, "create", js[vanished[0]].ID, "job with unique key vanished during create")
		}
		// On PostgreSQL (READ COMMITTED) the job that held the key may
		// have been pruned between the INSERT and the SELECT: the key is
		// free now, so insert those jobs again. Each try either inserts
		// or conflicts with a newer holder, which the next SELECT sees.
		retry := make([]*jobs.Job, len(vanished))
		for k, i := range vanished {
			retry[k] = js[i]
		}
		chunks, _, _ := chunkJobs(retry)
		inserted, err := insertRows(ctx, db, retry, chunks, true, rk)
		if err != nil {
			return nil, err
		}
		left = left[:0]
		for _, i := range vanished {
			if !inserted[js[i].ID] {
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
func (r *Repository) keyHolders(ctx context.Context, db bun.IDB, js []*jobs.Job, idx []int, dups map[int]*jobs.Job) ([]int, error) {
	keys := make([]string, len(idx))
	for k, i := range idx {
		keys[k] = js[i].UniqueKey
	}
	rows, err := db.QueryContext(ctx, "SELECT "+r.d.jobColumns()+" FROM jobs WHERE unique_key IN (?)", bun.List(keys))
	if err != nil {
		return nil, err
	}
	existing, err := scanJobs(rows)
	if err == nil {
		err = r.withDeps(ctx, db, existing)
	}
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]*jobs.Job, len(existing))
	for _, e := range existing {
		byKey[e.UniqueKey] = e
	}
	var vanished []int
	for _, i := range idx {
		e := byKey[js[i].UniqueKey]
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
// insertColsHead, unique_key, metadata, insertColsTail. Every INSERT
// statement of jobs builds its column list from these two constants; the
// others take their column defaults.
const (
	insertColsHead = "id, kind, queue, priority, payload, max_attempts, timeout, fair_rank"
	insertColsTail = "run_at, created_at, updated_at"
	insertCols     = insertColsHead + ", unique_key, concurrency_key, metadata, " + insertColsTail
)

// insertColumns is the multi-row INSERT of jobs up to its rows.
const insertColumns = "INSERT INTO jobs (" + insertCols + ") VALUES "

const onConflictKey = " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING"

// insertMultiRow inserts with one multi-row INSERT per chunk and returns the
// IDs it inserted when anyKey is set (nil otherwise).
func insertMultiRow(ctx context.Context, db bun.IDB, js []*jobs.Job, chunks [][2]int, anyKey bool, rk fairRanks) (map[uuid.UUID]bool, error) {
	var b strings.Builder
	var inserted map[uuid.UUID]bool
	if anyKey {
		inserted = make(map[uuid.UUID]bool, len(js))
	}
	for _, c := range chunks {
		b.Reset()
		args := make([]any, 0, 14*(c[1]-c[0]))
		b.WriteString(insertColumns)
		for i, j := range js[c[0]:c[1]] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, insertArgs(j, rk[j.ID])...)
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
func insertArgs(j *jobs.Job, rank int64) []any {
	var key any
	if j.UniqueKey != "" {
		key = j.UniqueKey
	}
	return []any{j.ID.String(), j.Kind, j.Queue, j.Priority, string(j.Payload), j.MaxAttempts,
		int64(j.Timeout), rank, key, j.ConcurrencyKey, metadataArg(j.Metadata), j.RunAt, j.CreatedAt, j.UpdatedAt}
}
