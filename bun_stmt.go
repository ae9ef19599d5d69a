package jobs

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"

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

// get returns the prepared statement of query, preparing it once.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		return st, nil
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
// prepared INSERT.
func (r *BunRepository) insertOneBound(ctx context.Context, j *Job) error {
	st, err := r.stmts.get(ctx, insertColumns+"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, j.ID.String(), j.Kind, j.Queue, j.Priority, string(j.Payload), j.MaxAttempts,
		int64(j.Timeout), nil, boundTime(j.RunAt), boundTime(j.CreatedAt), boundTime(j.UpdatedAt))
	return err
}

// query runs a statement whose placeholders are plain "?" with one argument
// each (no bun.List, no named arguments). Outside a transaction on SQLite it
// uses the cached prepared statement with driver-bound arguments (times as
// bun's text); otherwise db formats the arguments into the SQL as usual.
func (r *BunRepository) query(ctx context.Context, db bun.IDB, q string, args ...any) (*sql.Rows, error) {
	// SQLite binds at most 32 766 values; a longer list (a claim naming
	// thousands of kinds) is formatted into the SQL instead.
	if !r.d.bindsArgs() || db != bun.IDB(r.db) || len(args) > 32000 {
		return db.QueryContext(ctx, q, args...)
	}
	st, err := r.stmts.get(ctx, q)
	if err != nil {
		return nil, err
	}
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			args[i] = boundTime(t)
		}
	}
	return st.QueryContext(ctx, args...)
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
