package jobsbun

import (
	"context"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds the parts of [Repository] that are not a worker's
// fenced writes: cancellation and the maintenance queries.

// RequestCancel implements [jobs.JobRepository.RequestCancel] with one
// conditional UPDATE; only when it matches nothing does a read tell
// ErrNotFound from ErrConflict.
func (r *Repository) RequestCancel(ctx context.Context, id uuid.UUID) (*jobs.Job, error) {
	const op = "request cancel"
	t := rules.Now()
	var got []*jobs.Job
	set, args := r.cancelSet(t) // admin.go
	err := r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
		rows, err := db.QueryContext(ctx, set+"WHERE id = ? AND status IN ('waiting', 'pending', 'running') RETURNING "+r.d.jobColumns(),
			append(args, id.String())...)
		if err != nil {
			return err
		}
		if got, err = scanJobs(rows); err == nil {
			err = r.withDeps(ctx, db, got)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(got) > 0 {
		return got[0], nil
	}
	j, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return nil, newError(jobs.ErrConflict, op, id, "job is already %s", j.Status)
}

// CancelRequests implements [jobs.JobRepository.CancelRequests] with one query
// on the partial index of running jobs with a cancel request.
func (r *Repository) CancelRequests(ctx context.Context, owner string) ([]uuid.UUID, error) {
	const op = "cancel requests"
	if err := refused(op, rules.Name("owner", owner, false)); err != nil {
		return nil, err
	}
	if err := r.read(op); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx,
		"SELECT id FROM jobs WHERE status = 'running' AND cancel_requested AND lease_owner = ?", owner)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	defer rows.Close()
	ids := []uuid.UUID{}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	return ids, nil
}

// RescueExpired implements [jobs.JobRepository.RescueExpired] with one UPDATE
// whose WHERE re-checks that the lease is still expired and the job still
// running, so concurrent rescuers each requeue an expired lease once. The
// rescued attempt's error is "lease expired" (except for canceled jobs). A
// rescued row that cannot be read back is not returned: it fails with the
// reason as its error.
func (r *Repository) RescueExpired(ctx context.Context, limit int) ([]*jobs.Job, error) {
	const op = "rescue expired"
	if err := refused(op, rules.RescueLimit(limit)); err != nil {
		return nil, err
	}
	t := rules.Now() // leases are judged by when the call was made
	var rescued []*jobs.Job
	err := r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
		// On PostgreSQL "now" is the database's clock at the statement's
		// start, minus the time the call spent before it: waiting for a
		// connection of the pool, or for a new one.
		var waited time.Duration
		if r.d.pg {
			conn, err := r.db.Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			db, waited = conn, time.Since(t)
		}
		var b strings.Builder
		set, args := r.rescueSet(t, rules.LeaseExpired)
		b.WriteString(set + "WHERE ")
		nowSQL, args := r.d.callTime(args, t, waited)
		sub := "SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < " + nowSQL +
			" ORDER BY lease_expires_at LIMIT ?" + r.d.skipLocked()
		args = append(args, limit)
		nowSQL, args = r.d.callTime(args, t, waited)
		b.WriteString(r.d.idIn(sub) + " AND status = 'running' AND lease_expires_at < " + nowSQL + " RETURNING " + r.d.jobColumns())
		var err error
		rescued, err = r.rescueRows(ctx, db, t, b.String(), args)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rescued == nil {
		rescued = []*jobs.Job{}
	}
	return rescued, nil
}

// rescueSet is the start of a rescue's UPDATE, up to its WHERE, and its
// arguments: the job goes back to pending, or to failed when it has no
// attempt left, with msg as the rescued attempt's error; a job with a
// cancel request becomes canceled instead, its errors untouched. The lease
// is cleared, so that its former owner's writes are refused.
func (r *Repository) rescueSet(t time.Time, msg string) (string, []any) {
	return "UPDATE jobs SET " +
			"status = CASE WHEN cancel_requested THEN 'canceled' WHEN attempt >= max_attempts THEN 'failed' ELSE 'pending' END, " +
			"finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN ?" + r.d.castTime() + " ELSE NULL END, " +
			"error = CASE WHEN cancel_requested THEN error ELSE ? END, " +
			"errors = CASE WHEN cancel_requested THEN errors ELSE " + r.d.appendError("errors", "attempt", "?", "?") + " END, " +
			"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ? ",
		[]any{t, msg, msg, t.Format(time.RFC3339Nano), t}
}

// rescueRows runs a rescue's UPDATE … RETURNING and returns the rescued
// jobs. A rescued row that cannot be read back is not returned: it fails
// with the reason as its error.
func (r *Repository) rescueRows(ctx context.Context, db bun.IDB, t time.Time, query string, args []any) ([]*jobs.Job, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	rescued, bad, err := scanLenient(rows, newJobScanner())
	if err == nil {
		err = r.withDeps(ctx, db, rescued)
	}
	if err != nil || len(bad) == 0 {
		return rescued, err
	}
	// The rescue has happened; a failure to fail a row it cannot read
	// leaves that row requeued, and the claim that takes it fails it.
	_ = r.failUnreadable(ctx, db, t, true, bad)
	return rescued, nil
}

// Prune implements [jobs.JobRepository.Prune]: each batch deletes at most
// 1000 rows found through the finished_at index, in its own short write,
// so pruning never holds the write lock for long. The output of the jobs a
// batch deletes goes in the same write (output.go), and so does the
// change of the counts (schema_counts.go): on PostgreSQL the statement's
// trigger, on SQLite pruneSQLite.
func (r *Repository) Prune(ctx context.Context, finishedBefore time.Time) (int, error) {
	const op = "prune"
	total := 0
	// Only finished jobs have a finished_at (jobs_finished_check), so the
	// batch needs no test of the status.
	del := "DELETE FROM jobs WHERE " + r.d.idIn("SELECT id FROM jobs WHERE finished_at < ? LIMIT ?")
	for {
		var n int64
		err := r.write(ctx, op, r.d.sqlite(), func(ctx context.Context, db bun.IDB) error {
			var err error
			if r.d.sqlite() {
				n, err = pruneSQLite(ctx, db, finishedBefore.UTC())
			} else {
				n, err = r.pruneJobs(ctx, db, del, finishedBefore.UTC())
			}
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < pruneBatch {
			return total, nil
		}
	}
}

// pruneSQLite deletes one batch of Prune on SQLite and returns how many
// jobs it deleted: one DELETE of the first rows of the prune index, by
// rowid (the index holds it: no search of the primary key per row), and
// without RETURNING, which SQLite runs as one more trigger per row. The
// delete trigger of schema_counts.go takes each job off the counts and
// deletes its output.
func pruneSQLite(ctx context.Context, db bun.IDB, before time.Time) (int64, error) {
	const batch = "rowid IN (SELECT rowid FROM jobs WHERE finished_at < ? LIMIT ?)"
	res, err := db.ExecContext(ctx, "DELETE FROM jobs WHERE "+batch, before, pruneBatch)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, nil
}
