package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds the worker side of [BunRepository]: claim, the fenced
// writes of a lease holder, and the maintenance queries. Every method is
// one SQL statement (Prune: one per batch); batch writes join a VALUES list
// of (id, token, …) against jobs and RETURNING id tells which leases held.

// Claim implements [JobRepository.Claim] with one UPDATE … WHERE id IN
// (SELECT … ORDER BY … LIMIT n) RETURNING statement, served by the partial
// index on pending rows. Each row gets its own fresh lease token.
func (r *BunRepository) Claim(ctx context.Context, q ClaimQuery) ([]*Job, error) {
	const op = "claim"
	if err := checkClaim(q); err != nil {
		return nil, err
	}
	t := now()
	query, args := r.claimSQL(q, t)
	var claimed []*Job
	err := r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
		rows, err := r.query(ctx, db, query, args...)
		if err != nil {
			return err
		}
		if r.d.pg {
			claimed, err = scanLenient(rows, newJobScanner())
			return err
		}
		claimed, err = scanLenient(rows, newClaimScanner())
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.d.sqlite() {
		// The values the claim set from Go, as stored (to the microsecond).
		expires := t.Add(q.LeaseDuration).Truncate(time.Microsecond)
		for _, j := range claimed {
			j.Status, j.LeaseOwner = StatusRunning, q.Owner
			j.StartedAt, j.UpdatedAt, j.LeaseExpiresAt, j.FinishedAt = t, t, expires, time.Time{}
		}
	}
	sortClaimed(claimed)
	if claimed == nil {
		claimed = []*Job{}
	}
	return claimed, nil
}

// claimSQL is the claim statement of q at time t and its arguments.
func (r *BunRepository) claimSQL(q ClaimQuery, t time.Time) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 10)
	b.WriteString("UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ")
	b.WriteString(r.d.newToken())
	b.WriteString(", lease_owner = ?, started_at = ?, updated_at = ?, lease_expires_at = ")
	args = append(args, q.Owner, t, t)
	var s string
	s, args = r.d.leaseUntil(args, t, q.LeaseDuration)
	b.WriteString(s)
	var sub strings.Builder
	sub.WriteString("SELECT id FROM jobs WHERE status = 'pending' AND run_at <= ")
	s, args = r.d.now(args, t)
	sub.WriteString(s)
	if len(q.Queues) > 0 {
		sub.WriteString(" AND queue IN (")
		placeholders(&sub, len(q.Queues))
		sub.WriteString(")")
		for _, s := range q.Queues {
			args = append(args, s)
		}
	}
	if len(q.Kinds) > 0 {
		sub.WriteString(" AND kind IN (")
		placeholders(&sub, len(q.Kinds))
		sub.WriteString(")")
		for _, s := range q.Kinds {
			args = append(args, s)
		}
	}
	// On SQLite the limit is bound as +?: a plain bound LIMIT makes SQLite
	// re-prepare the statement on every run (it plans with the value), and a
	// literal would prepare one statement per limit.
	sub.WriteString(" ORDER BY priority DESC, run_at, id LIMIT " + r.d.limitArg())
	args = append(args, q.Limit)
	sub.WriteString(r.d.skipLocked())
	returning := jobColumns
	if r.d.sqlite() {
		returning = sqliteClaimColumns
	}
	b.WriteString(" WHERE " + r.d.idIn(sub.String()) + " AND " + r.d.stillPending() + " RETURNING " + returning)
	return b.String(), args
}

// scanLenient scans every row it can: a row that cannot be scanned is left
// out (it stays running and the rescuer retries it when its lease expires)
// so that it does not fail the rows claimed with it.
func scanLenient(rows *sql.Rows, s *jobScanner) ([]*Job, error) {
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		if j, err := s.scan(rows); err == nil {
			out = append(out, j)
		}
	}
	return out, rows.Err()
}

// maxBatchRows is the most rows one batch statement carries.
const maxBatchRows = 1024

// fencedRow is one job of a fenced batch write: its lease and the values of
// the batch's extra columns.
type fencedRow struct {
	lease Lease
	data  []any
}

// fencedUpdate runs one UPDATE of the jobs named by rows, fenced by
// (id, lease token, running), and returns an ErrLeaseLost error for each row
// it matched nothing for. The rows form the table _data (see
// sqlDialect.batchTable) with the columns d_id, d_token and cols; set returns the
// SET clause, which may use them, with its arguments appended to args.
func (r *BunRepository) fencedUpdate(ctx context.Context, op string, cols []batchCol,
	rows []fencedRow, set func(args []any) (string, []any)) error {
	return r.runFenced(ctx, op, fencedBatch{cols, rows, set})
}

// fencedBatch is the rows of a fenced update with its columns and SET
// clause (see fencedUpdate).
type fencedBatch struct {
	cols []batchCol
	rows []fencedRow
	set  func(args []any) (string, []any)
}

// fencedStmt is one statement of a fenced write.
type fencedStmt struct {
	query string
	args  []any
}

// stmts appends the batch's statements to out: one per d.batchRows rows.
func (b fencedBatch) stmts(d sqlDialect, out []fencedStmt) []fencedStmt {
	all := append(leaseCols[:len(leaseCols):len(leaseCols)], b.cols...)
	per := d.batchRows(len(all))
	for lo := 0; lo < len(b.rows); lo += per {
		chunk := b.rows[lo:min(lo+per, len(b.rows))]
		values := make([][]any, len(chunk))
		for i, row := range chunk {
			values[i] = append([]any{row.lease.JobID.String(), row.lease.Token}, row.data...)
		}
		table, args := d.batchTable(all, values)
		setSQL, args := b.set(args)
		out = append(out, fencedStmt{"WITH _data AS (" + table + ") UPDATE " + d.orRollback() + "jobs SET " + setSQL +
			" FROM _data WHERE id = d_id AND lease_token = d_token AND status = 'running' RETURNING id", args})
	}
	return out
}

// runFenced runs the statements of the batches as one write (a transaction
// when there are several) and returns an ErrLeaseLost error for each row
// that matched nothing.
func (r *BunRepository) runFenced(ctx context.Context, op string, batches ...fencedBatch) error {
	var stmts []fencedStmt
	n := 0
	for _, b := range batches {
		stmts = b.stmts(r.d, stmts)
		n += len(b.rows)
	}
	if len(stmts) == 0 {
		return nil
	}
	var matched map[uuid.UUID]bool
	err := r.write(ctx, op, len(stmts) > 1, func(ctx context.Context, db bun.IDB) error {
		matched = make(map[uuid.UUID]bool, n)
		for _, st := range stmts {
			res, err := r.query(ctx, db, st.query, st.args...)
			if err != nil {
				return err
			}
			for res.Next() {
				var id uuid.UUID
				if err := res.Scan(&id); err != nil {
					res.Close()
					return err
				}
				matched[id] = true
			}
			if err := errors.Join(res.Err(), res.Close()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range batches {
		for _, row := range b.rows {
			if !matched[row.lease.JobID] {
				errs = append(errs, leaseLost(op, row.lease.JobID))
			}
		}
	}
	return errors.Join(errs...)
}

// dedupeIndex keeps the last item per job ID, in order, and returns the
// earlier items it dropped.
func dedupeIndex[T any](items []T, id func(T) uuid.UUID) (keep []T, dropped []T) {
	last := make(map[uuid.UUID]int, len(items))
	for i, it := range items {
		last[id(it)] = i
	}
	if len(last) == len(items) {
		return items, nil
	}
	for i, it := range items {
		if last[id(it)] == i {
			keep = append(keep, it)
		} else {
			dropped = append(dropped, it)
		}
	}
	return keep, dropped
}

// UpdateProgress implements [JobRepository.UpdateProgress] in one
// statement. When one job appears several times, the last update wins.
func (r *BunRepository) UpdateProgress(ctx context.Context, lease time.Duration, updates ...ProgressUpdate) error {
	const op = "update progress"
	if err := checkLeaseDuration(op, lease); err != nil {
		return err
	}
	for _, u := range updates {
		if err := u.Progress.Validate(); err != nil {
			if e, ok := errors.AsType[*Error](err); ok {
				e.JobID = u.Lease.JobID
			}
			return err
		}
	}
	updates, _ = dedupeIndex(updates, func(u ProgressUpdate) uuid.UUID { return u.Lease.JobID })
	t := now()
	rows := make([]fencedRow, len(updates))
	for i, u := range updates {
		rows[i] = fencedRow{lease: u.Lease, data: []any{u.Progress.Fraction, u.Progress.Message}}
	}
	return r.fencedUpdate(ctx, op, []batchCol{{"d_frac", "float8"}, {"d_msg", "text"}}, rows,
		func(args []any) (string, []any) {
			args = append(args, t)
			exp, args := r.d.leaseUntil(args, t, lease)
			return "progress_fraction = d_frac, progress_message = d_msg, updated_at = ?, lease_expires_at = " + exp, args
		})
}

// Heartbeat implements [JobRepository.Heartbeat] in one statement.
func (r *BunRepository) Heartbeat(ctx context.Context, lease time.Duration, leases ...Lease) error {
	const op = "heartbeat"
	if err := checkLeaseDuration(op, lease); err != nil {
		return err
	}
	leases, _ = dedupeIndex(leases, func(l Lease) uuid.UUID { return l.JobID })
	t := now()
	rows := make([]fencedRow, len(leases))
	for i, l := range leases {
		rows[i] = fencedRow{lease: l}
	}
	return r.fencedUpdate(ctx, op, nil, rows, func(args []any) (string, []any) {
		args = append(args, t)
		exp, args := r.d.leaseUntil(args, t, lease)
		return "updated_at = ?, lease_expires_at = " + exp, args
	})
}

// Finish implements [JobRepository.Finish] in one statement: every
// completion's row is joined from a VALUES list, and the attempt error is
// appended to the job's history in SQL. When one job appears several times,
// the first completion is applied and the later ones report ErrLeaseLost
// (the first one ended the lease). A retry (StatusPending) of a job with a
// cancel request ends it as canceled.
func (r *BunRepository) Finish(ctx context.Context, completions ...Completion) error {
	const op = "finish"
	for _, c := range completions {
		if err := checkCompletion(c, r.maxPayload); err != nil {
			if e, ok := errors.AsType[*Error](err); ok && e.JobID == uuid.Nil {
				e.JobID = c.Lease.JobID
			}
			return err
		}
	}
	var errs []error
	seen := make(map[uuid.UUID]bool, len(completions))
	keep := completions[:0:0]
	for _, c := range completions {
		if seen[c.Lease.JobID] {
			errs = append(errs, leaseLost(op, c.Lease.JobID))
			continue
		}
		seen[c.Lease.JobID] = true
		keep = append(keep, c)
	}
	t := now()
	d := r.d
	// On SQLite a plain success (no result, error or progress: the common
	// case) needs only the lease in its row and the others carry every
	// value: fewer values to bind. On PostgreSQL the rows travel as one
	// JSON value and one statement (one notification) does all.
	var plain, full []fencedRow
	for _, c := range keep {
		if d.sqlite() && c.Status == StatusSucceeded && c.Progress == nil && c.Error == "" && len(bytes.TrimSpace(c.Result)) == 0 {
			plain = append(plain, fencedRow{lease: c.Lease})
			continue
		}
		runAt := c.RunAt.UTC().Truncate(time.Microsecond)
		if runAt.IsZero() {
			runAt = t
		}
		var frac float64
		var msg string
		if c.Progress != nil {
			frac, msg = c.Progress.Fraction, c.Progress.Message
		}
		var result []byte
		if len(bytes.TrimSpace(c.Result)) > 0 {
			result = c.Result
		}
		full = append(full, fencedRow{lease: c.Lease, data: []any{string(c.Status), result, cleanText(truncateError(c.Error)),
			runAt, c.Progress != nil, frac, msg}})
	}
	var batches []fencedBatch
	if len(plain) > 0 {
		batches = append(batches, fencedBatch{nil, plain, func(args []any) (string, []any) {
			return "status = 'succeeded', result = NULL, progress_fraction = 1, finished_at = ?" + d.castTime() + ", " +
				"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?", append(args, t, t)
		}})
	}
	if len(full) > 0 {
		batches = append(batches, fencedBatch{[]batchCol{{"d_status", "text"}, {"d_result", "text"}, {"d_error", "text"},
			{"d_run_at", "timestamptz"}, {"d_has_progress", "boolean"}, {"d_frac", "float8"}, {"d_msg", "text"}},
			full, func(args []any) (string, []any) {
				// A retry of a job with a cancel request ends it as canceled.
				const retry = "(d_status = 'pending' AND NOT cancel_requested)"
				set := "status = CASE WHEN d_status = 'pending' AND cancel_requested THEN 'canceled' ELSE d_status END, " +
					"result = CASE WHEN d_status = 'succeeded' THEN " + d.jsonFromText("d_result") + " ELSE result END, " +
					"progress_fraction = CASE WHEN d_has_progress THEN d_frac WHEN d_status = 'succeeded' THEN 1 ELSE progress_fraction END, " +
					"progress_message = CASE WHEN d_has_progress THEN d_msg ELSE progress_message END, " +
					"error = CASE WHEN d_error <> '' THEN d_error ELSE error END, " +
					"errors = CASE WHEN d_error <> '' THEN " + d.appendError("errors", "attempt", "d_error", "?") + " ELSE errors END, " +
					"run_at = CASE WHEN " + retry + " THEN d_run_at ELSE run_at END, " +
					"finished_at = CASE WHEN " + retry + " THEN NULL ELSE ?" + d.castTime() + " END, " +
					"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?"
				return set, append(args, t.Format(time.RFC3339Nano), t, t)
			}})
	}
	err := r.runFenced(ctx, op, batches...)
	return errors.Join(append(errs, err)...)
}

// Release implements [JobRepository.Release] in one statement.
func (r *BunRepository) Release(ctx context.Context, leases ...Lease) error {
	const op = "release"
	leases, _ = dedupeIndex(leases, func(l Lease) uuid.UUID { return l.JobID })
	t := now()
	rows := make([]fencedRow, len(leases))
	for i, l := range leases {
		rows[i] = fencedRow{lease: l}
	}
	return r.fencedUpdate(ctx, op, nil, rows, func(args []any) (string, []any) {
		return "status = CASE WHEN cancel_requested THEN 'canceled' ELSE 'pending' END, " +
			"attempt = CASE WHEN attempt > 0 THEN attempt - 1 ELSE 0 END, " +
			"finished_at = CASE WHEN cancel_requested THEN ?" + r.d.castTime() + " ELSE NULL END, " +
			"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?", append(args, t, t)
	})
}

// cleanText makes s storable in a text column of either database: valid
// UTF-8 without NUL bytes.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}
