package jobsbun

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file settles the outcome of Create's own writes (not those in a
// caller's transaction, whose commit the caller owns).
//
// A write that has started (it holds the write gate on SQLite, a connection
// on PostgreSQL) runs on a context that the caller's does not cancel: a
// context that ends during a statement hides its outcome. The modernc
// driver reports a statement that completed as failed with the context's
// error; pgx closes the connection, and PostgreSQL may still commit the
// statement, or the COMMIT, that was running. The write gets
// defaultWriteGrace after the caller's context ends; past that, it is
// abandoned.
//
// A started write that fails without saying whether it committed (the
// connection was lost, the grace ran out, an error the database did not
// answer with) is confirmed by reading its jobs back by the IDs assigned
// before the write. Found: the write committed. Not found: on SQLite it did
// not, since the in-process statement ended when the call returned; on
// PostgreSQL the server may still be running it, so the outcome is unknown.
// So is it when the read fails.

// defaultWriteGrace is how long a started write of Create may go on after
// the caller's ctx ended.
const defaultWriteGrace = 10 * time.Second

// confirmTimeout bounds the read that confirms the outcome of a write.
const confirmTimeout = 5 * time.Second

// writeCreate runs fn as Create's own write of jobs, like
// [Repository.write], but waits it out once started and confirms an
// outcome left in doubt with [Repository.confirmCreate]. When a
// confirmed write stored the jobs, it returns nil and sets *dups to the
// existing jobs that took the place of those whose unique key was taken.
func (r *Repository) writeCreate(ctx context.Context, op string, tx bool, js []*jobs.Job, dups *map[int]*jobs.Job,
	fn func(ctx context.Context, db bun.IDB) error) error {
	if r.closed.Load() {
		return newError(jobs.ErrClosed, op, uuid.Nil, "repository is closed")
	}
	var started bool
	err := r.retryWhileBusy(ctx, func() error {
		var err error
		started, err = r.writeStarted(ctx, tx, r.writeGrace, fn)
		return err
	})
	switch {
	case err == nil:
		return nil
	case !started && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ended(ctx):
		// ctx ended before the write started, and the error (a timeout
		// dialing PostgreSQL, say) does not say so.
		err = fmt.Errorf("%w: %w", cmp.Or(ctx.Err(), context.DeadlineExceeded), err)
	case started && inDoubt(err):
		found, err := r.confirmCreate(ctx, op, js, err)
		if err == nil {
			*dups = found
		}
		return err
	}
	return storageError(op, uuid.Nil, err)
}

// writeStarted is one try of a Create write. It waits under ctx for the
// write gate (SQLite) or a connection (PostgreSQL); then the write has
// started, and fn runs under a context that ends grace after ctx does.
// started reports whether it got that far.
func (r *Repository) writeStarted(ctx context.Context, tx bool, grace time.Duration,
	fn func(ctx context.Context, db bun.IDB) error) (started bool, err error) {
	if err := r.gate.acquire(ctx); err != nil {
		return false, err
	}
	defer r.gate.release()
	var db bun.IDB = r.db
	if r.d.pg {
		// SQLite's writes are gated, and its cached statements belong to
		// the pool; PostgreSQL's may wait for a pooled connection.
		conn, err := r.db.Conn(ctx)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		db = conn
	}
	if ctx.Err() != nil {
		return false, ctx.Err() // the gate may be taken although ctx had ended
	}
	// On SQLite no statement waits longer than the busy timeout, so the
	// write needs no bound of its own: it runs detached, which also spares
	// the driver a watcher of the caller's context per statement. (A grace
	// of zero, for tests, cuts writes at the caller's deadline everywhere.)
	wctx, cancel := context.WithoutCancel(ctx), func() {}
	if r.d.pg || grace == 0 {
		wctx, cancel = afterGrace(ctx, grace)
	}
	defer cancel()
	if !tx {
		err = fn(wctx, db)
	} else {
		err = db.RunInTx(wctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
	}
	if err != nil && wctx.Err() != nil && !errors.Is(err, wctx.Err()) {
		// Past the grace, say so: a write that database/sql rolled back
		// reports only sql.ErrTxDone.
		err = fmt.Errorf("%w: %w", wctx.Err(), err)
	}
	return true, err
}

// afterGrace returns a context with ctx's values that ends grace after ctx
// does: at ctx's deadline plus grace, or grace after ctx is canceled.
func afterGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, d.Add(grace))
	}
	wctx, cancel := context.WithCancel(detached)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() {
		stop()
		cancel()
	}
}

// ended reports whether ctx has ended or its deadline has passed (the timer
// that ends ctx may fire after a deadline set on a socket has).
func ended(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(d)
}

// inDoubt reports whether err, from a write that started, leaves open
// whether it committed. It does not when the database answered with an
// error (PostgreSQL's SQLSTATE errors, busy on either database) or when
// database/sql reports a write that cannot have committed: a transaction it
// rolled back, a connection that failed before the write was sent, a
// closed database.
func inDoubt(err error) bool {
	switch {
	case errors.Is(err, sql.ErrTxDone), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		strings.Contains(err.Error(), "sql: database is closed"), isBusy(err):
		return false
	}
	_, answered := errors.AsType[sqlStateError](err)
	return !answered
}

// confirmCreate settles a write of jobs that failed with writeErr, in
// doubt, by reading the jobs back by ID with a context of its own (ctx may
// have ended). It returns nil when the write committed, with the existing
// jobs that took the place of those whose unique key was taken (as
// [Repository.insert] does); writeErr, translated, when it did not; and
// [jobs.ErrOutcomeUnknown] when it cannot tell.
func (r *Repository) confirmCreate(ctx context.Context, op string, js []*jobs.Job, writeErr error) (map[int]*jobs.Job, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
	defer cancel()
	found, err := r.storedIDs(ctx, js)
	switch {
	case err != nil:
		return nil, outcomeUnknown(op, fmt.Errorf("%w; reading the jobs back: %w", writeErr, err))
	case len(found) == 0 && r.d.pg:
		return nil, outcomeUnknown(op, writeErr)
	case len(found) == 0:
		return nil, storageError(op, uuid.Nil, writeErr)
	}
	// The write committed, all of it: the jobs not found were not inserted
	// because their unique key was taken.
	var keys []string
	for _, j := range js {
		if !found[j.ID] {
			keys = append(keys, j.UniqueKey)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := r.db.QueryContext(ctx, "SELECT "+r.d.jobColumns()+" FROM jobs WHERE unique_key IN (?)", bun.List(keys))
	if err != nil {
		return nil, outcomeUnknown(op, fmt.Errorf("%w; reading the jobs back: %w", writeErr, err))
	}
	existing, err := scanJobs(rows)
	if err == nil {
		err = r.withDeps(ctx, r.db, existing)
	}
	if err != nil {
		return nil, outcomeUnknown(op, fmt.Errorf("%w; reading the jobs back: %w", writeErr, err))
	}
	byKey := make(map[string]*jobs.Job, len(existing))
	for _, e := range existing {
		byKey[e.UniqueKey] = e
	}
	dups := make(map[int]*jobs.Job, len(keys))
	for i, j := range js {
		if found[j.ID] {
			continue
		}
		e := byKey[j.UniqueKey]
		if j.UniqueKey == "" || e == nil {
			// Pruned since, or never stored: the write cannot be told.
			return nil, outcomeUnknown(op, fmt.Errorf("%w; job %s is not stored after the write committed", writeErr, j.ID))
		}
		c := *e
		dups[i] = &c
	}
	return dups, nil
}

// storedIDs returns the IDs of the jobs that are stored.
func (r *Repository) storedIDs(ctx context.Context, js []*jobs.Job) (map[uuid.UUID]bool, error) {
	found := make(map[uuid.UUID]bool, len(js))
	for lo := 0; lo < len(js); lo += insertChunkRows {
		hi := min(lo+insertChunkRows, len(js))
		ids := make([]string, 0, hi-lo)
		for _, j := range js[lo:hi] {
			ids = append(ids, j.ID.String())
		}
		rows, err := r.db.QueryContext(ctx, "SELECT id FROM jobs WHERE id IN (?)", bun.List(ids))
		if err != nil {
			return nil, err
		}
		if err := scanInsertedIDs(rows, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// outcomeUnknown is the [jobs.ErrOutcomeUnknown] of a write that failed with
// cause.
func outcomeUnknown(op string, cause error) *jobs.Error {
	return &jobs.Error{Code: jobs.ErrOutcomeUnknown, Op: op, Msg: "the database could not confirm whether the write was stored", Err: cause}
}
