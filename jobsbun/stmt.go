package jobsbun

import (
	"context"
	"database/sql"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/uptrace/bun"
)

// stmtCache keeps prepared statements of the repository's hottest fixed
// queries on SQLite, where parsing and planning a statement costs as much as
// running it (CHECK constraints and indexes are compiled at prepare time).
// Arguments are bound by the driver, never formatted into the SQL text.
// These statements bypass bun's query hooks. It is safe for concurrent use.
type stmtCache struct {
	db *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache: claims differ in their number of queues
// and kinds, so the set of statements is open-ended. Past the bound,
// statements are not cached.
const maxCachedStmts = 512

// get returns the prepared statement of query, preparing it once. It
// returns nil and no error when query is not in the cache and the cache is
// full or the pool has no free connection; the caller then runs query
// without a prepared statement.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		return st, nil
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil, nil
	}
	// Preparing on the pool needs a free connection. When every connection
	// is in use, one of them may be the caller's own transaction (always so
	// with a pool of one), and waiting would deadlock: run unprepared now
	// and prepare on a later call.
	if s := c.db.Stats(); s.MaxOpenConnections > 0 && s.InUse >= s.MaxOpenConnections {
		return nil, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
	return st, nil
}

// close closes every statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		_ = st.Close()
		delete(c.stmts, q)
	}
}

// boundTime is a time as a driver-bound argument: the text bun would have
// written, so rows compare the same whichever path wrote them.
func boundTime(t time.Time) string { return t.UTC().Format(sqlTimeLayout) }

// insertOneBound inserts one job without a unique key through the cached
// prepared INSERT, created at t; a due job's rank offset rk is folded
// into the INSERT (foldedRankSQL).
func (r *Repository) insertOneBound(ctx context.Context, j *jobs.Job, rk fairRanks, t time.Time) error {
	args := insertBoundArgs(make([]any, 0, 17), j, rk)
	if rk[j.ID] < 0 {
		return r.exec(ctx, r.db, insertOneSQL, args...)
	}
	// The rank's argument is the 8th (insertColsHead).
	now := boundTime(t)
	args = slices.Insert(args, 8, any(j.Queue), any(j.ConcurrencyKey), any(j.Queue), any(now), any(j.Queue), any(now))
	return r.exec(ctx, r.db, insertOneFoldedSQL, args...)
}

// keylessFoldedRow is keylessRow with the rank computed by foldedRankSQL.
var keylessFoldedRow = "(?, ?, ?, ?, ?, ?, ?, " + foldedRankSQL + ", ?, ?, ?)"

// insertOneSQL and insertOneFoldedSQL are the statements of insertOneBound,
// built once: an enqueue would otherwise build a kilobyte of SQL text.
var (
	insertOneSQL       = "INSERT" + keylessInsert + keylessRow
	insertOneFoldedSQL = "INSERT" + keylessInsert + keylessFoldedRow
)

// insertBoundRows is the most rows one prepared INSERT of insertBound
// carries. The driver binds in linear time, so 16 to 128 rows per statement
// insert equally fast (BenchmarkRepoCreateBatch); 32 keeps each statement
// of the cache small.
const insertBoundRows = 32

// keylessInsert is the INSERT of jobs without a unique key, after the
// INSERT keyword: the column defaults fill unique_key and the rest.
const keylessInsert = " INTO jobs (" + insertColsHead + ", " + insertColsTail + ") VALUES "

// keylessRow holds the placeholders of one row of keylessInsert.
const keylessRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// insertBoundSQL holds the INSERT statements of 1, 2, 4, … insertBoundRows
// rows: insertBoundSQL[k] has 1<<k rows.
var insertBoundSQL = func() []string {
	var out []string
	for n := 1; n <= insertBoundRows; n *= 2 {
		var b strings.Builder
		// OR ROLLBACK: a failing row ends the whole transaction (which
		// fails anyway), so SQLite keeps no statement journal, which
		// otherwise copies every page a statement touches first.
		b.WriteString("INSERT OR ROLLBACK" + keylessInsert)
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(keylessRow)
		}
		out = append(out, b.String())
	}
	return out
}()

// insertSameTimeSQL holds the INSERT statements of 1, 2, 4, …
// insertBoundRows rows that were created and run at one time, bound once
// (the common batch): 8 values a row instead of 11.
var insertSameTimeSQL = func() []string {
	var out []string
	for n := 1; n <= insertBoundRows; n *= 2 {
		var b strings.Builder
		b.WriteString("WITH _t(ts) AS (SELECT ?) INSERT OR ROLLBACK" + strings.TrimSuffix(keylessInsert, " VALUES ") +
			" SELECT column1, column2, column3, column4, column5, column6, column7, column8, ts, ts, ts FROM (VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		}
		b.WriteString("), _t")
		out = append(out, b.String())
	}
	return out
}()

// insertBoundArgs appends the values of j for keylessRow to args; equal
// times are formatted once.
func insertBoundArgs(args []any, j *jobs.Job, rk fairRanks) []any {
	created := boundTime(j.CreatedAt)
	updated, runAt := created, created
	if !j.UpdatedAt.Equal(j.CreatedAt) {
		updated = boundTime(j.UpdatedAt)
	}
	if !j.RunAt.Equal(j.CreatedAt) {
		runAt = boundTime(j.RunAt)
	}
	return append(args, j.ID.String(), j.Kind, j.Queue, j.Priority, string(j.Payload), j.MaxAttempts,
		int64(j.Timeout), rk[j.ID], runAt, created, updated)
}

// insertBound inserts jobs without unique keys with cached prepared
// INSERTs of insertBoundRows rows, the rest with the statements of the
// powers of two that make it up. A chunk whose jobs share one creation and
// run time binds that time once (insertSameTimeSQL). db is a transaction of [Repository.write]
// (several statements must be all or nothing).
func (r *Repository) insertBound(ctx context.Context, db bun.IDB, js []*jobs.Job, rk fairRanks) error {
	args := make([]any, 0, 11*insertBoundRows)
	for lo := 0; lo < len(js); {
		k := bits.Len(uint(min(len(js)-lo, insertBoundRows))) - 1
		n := 1 << k
		chunk := js[lo : lo+n]
		at := chunk[0].CreatedAt
		same := true
		for _, j := range chunk {
			same = same && j.CreatedAt.Equal(at) && j.UpdatedAt.Equal(at) && j.RunAt.Equal(at)
		}
		args = args[:0]
		q := insertBoundSQL[k]
		if same {
			q = insertSameTimeSQL[k]
			args = append(args, boundTime(at))
			for _, j := range chunk {
				args = append(args, j.ID.String(), j.Kind, j.Queue, j.Priority, string(j.Payload), j.MaxAttempts, int64(j.Timeout), rk[j.ID])
			}
		} else {
			for _, j := range chunk {
				args = insertBoundArgs(args, j, rk)
			}
		}
		if err := r.exec(ctx, db, q, args...); err != nil {
			return err
		}
		lo += n
	}
	return nil
}

// query runs a statement whose placeholders are plain "?" with one argument
// each (no bun.List, no named arguments). db is the repository's database or
// a transaction that [Repository.write] opened. On SQLite it uses the
// cached prepared statement with driver-bound arguments (times as bun's
// text); otherwise db formats the arguments into the SQL as usual.
func (r *Repository) query(ctx context.Context, db bun.IDB, q string, args ...any) (*sql.Rows, error) {
	st, err := r.boundStmt(ctx, db, q, args)
	if st == nil || err != nil {
		if err == nil {
			return db.QueryContext(ctx, q, args...)
		}
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// exec is query for statements that return no rows.
func (r *Repository) exec(ctx context.Context, db bun.IDB, q string, args ...any) error {
	st, err := r.boundStmt(ctx, db, q, args)
	if st == nil || err != nil {
		if err == nil {
			_, err = db.ExecContext(ctx, q, args...)
		}
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// boundStmt returns the cached prepared statement of q for db (the
// repository's database, or a transaction of it), with the times in args
// replaced by their text, or nil when q must go through db's formatting
// instead: on PostgreSQL, in a connection the repository did not open,
// when the cache is full, or with more arguments than SQLite binds.
func (r *Repository) boundStmt(ctx context.Context, db bun.IDB, q string, args []any) (*sql.Stmt, error) {
	// SQLite binds at most 32 766 values; a longer list (a claim naming
	// thousands of kinds) is formatted into the SQL instead.
	if !r.d.bindsArgs() || len(args) > 32000 {
		return nil, nil
	}
	var tx *sql.Tx
	switch db := db.(type) {
	case *bun.DB:
		if db != r.db {
			return nil, nil
		}
	case bun.Tx:
		tx = db.Tx
	default:
		return nil, nil
	}
	st, err := r.stmts.get(ctx, q)
	if st == nil || err != nil {
		return nil, err
	}
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			args[i] = boundTime(t)
		}
	}
	if tx != nil {
		// Prepared once per pooled connection and kept by st; the
		// transaction's handle is released when the transaction ends.
		st = tx.StmtContext(ctx, st)
	}
	return st, nil
}

// placeholders appends n comma-separated "?" to b.
func placeholders(b *strings.Builder, n int) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('?')
	}
}
