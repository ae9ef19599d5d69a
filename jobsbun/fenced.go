package jobsbun

import (
	"context"
	"errors"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds the machinery of the fenced batch writes of
// [Repository] (UpdateProgress, Heartbeat, Finish, Release): the rows of
// a batch join a VALUES list (a JSON value on PostgreSQL) of (id, token, …)
// against jobs, only running rows under that lease token are updated, and
// RETURNING id, status tells which leases held and what was stored.

// maxBatchRows is the most rows one batch statement carries.
const maxBatchRows = 1024

// fencedRow is one job of a fenced batch write: its lease, the values of
// the batch's extra columns and, for Finish, the status it asks for.
type fencedRow struct {
	lease jobs.Lease
	data  []any
	want  jobs.Status // "" when the write does not change the status
}

// fencedBatch is the rows of a fenced update with its columns and SET
// clause. set gets the time of the write, taken once the write holds the
// database's write lock, and returns the SET clause, which may use the
// columns d_id, d_token and cols, with its arguments appended to args.
type fencedBatch struct {
	cols []batchCol
	rows []fencedRow
	set  func(args []any, t time.Time) (string, []any)
}

// fencedStmt is one statement of a fenced write and the round it belongs to.
type fencedStmt struct {
	query string
	args  []any
	round int
}

// rounds splits the batch so that no job appears twice in one round: the
// k-th row of each job goes to round k. One statement can then update a job
// only once, and a row with a stale lease cannot hide a row with the
// current lease of the same job.
func (b fencedBatch) rounds() []fencedBatch {
	seen := make(map[uuid.UUID]int, len(b.rows))
	for _, row := range b.rows {
		seen[row.lease.JobID]++
	}
	if len(seen) == len(b.rows) {
		return []fencedBatch{b}
	}
	clear(seen)
	var out []fencedBatch
	for _, row := range b.rows {
		k := seen[row.lease.JobID]
		seen[row.lease.JobID] = k + 1
		for len(out) <= k {
			out = append(out, fencedBatch{cols: b.cols, set: b.set})
		}
		out[k].rows = append(out[k].rows, row)
	}
	return out
}

// perStmt is how many rows of the batch one statement carries.
func (b fencedBatch) perStmt(d sqlDialect) int { return d.batchRows(len(leaseCols) + len(b.cols)) }

// stmts appends the batch's statements at time t to out, as round round:
// one per d.batchRows rows.
func (b fencedBatch) stmts(d sqlDialect, t time.Time, round int, out []fencedStmt) []fencedStmt {
	all := append(leaseCols[:len(leaseCols):len(leaseCols)], b.cols...)
	per := b.perStmt(d)
	for lo := 0; lo < len(b.rows); lo += per {
		chunk := b.rows[lo:min(lo+per, len(b.rows))]
		values := make([][]any, len(chunk))
		for i, row := range chunk {
			values[i] = append([]any{row.lease.JobID.String(), row.lease.Token}, row.data...)
		}
		table, args := d.batchTable(all, values)
		setSQL, args := b.set(args, t)
		out = append(out, fencedStmt{"WITH _data AS (" + table + ") UPDATE " + d.orRollback() + "jobs SET " + setSQL +
			" FROM _data WHERE id = d_id AND lease_token = d_token AND status = 'running' RETURNING id, status", args, round})
	}
	return out
}

// runFenced runs the statements of the batches as one write and returns an
// ErrLeaseLost error for each row that matched nothing, and an ErrCanceled
// error for each row stored as canceled instead of the status it asked for
// (a cancel request took over; see [jobs.JobRepository.Finish]). The write is a
// transaction when it has several statements, or when renews is set on
// SQLite: a write that sets leases must read the clock after it got the
// write lock, so that a write that waited for another process never stores
// a lease that had run out before it landed.
func (r *Repository) runFenced(ctx context.Context, op string, renews bool, batches ...fencedBatch) error {
	var rounds []fencedBatch
	n := 0
	for _, b := range batches {
		if len(b.rows) > 0 {
			rounds = append(rounds, b.rounds()...)
			n += len(b.rows)
		}
	}
	if n == 0 {
		return nil
	}
	stmts := 0
	for _, b := range rounds {
		per := b.perStmt(r.d)
		stmts += (len(b.rows) + per - 1) / per
	}
	stored := make([]map[uuid.UUID]jobs.Status, len(rounds))
	err := r.write(ctx, op, stmts > 1 || renews && r.d.sqlite(), func(ctx context.Context, db bun.IDB) error {
		t := rules.Now()
		var all []fencedStmt
		for i, b := range rounds {
			all = b.stmts(r.d, t, i, all)
			stored[i] = make(map[uuid.UUID]jobs.Status, len(b.rows))
		}
		for _, st := range all {
			if err := r.scanStored(ctx, db, st, stored[st.round]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for i, b := range rounds {
		for _, row := range b.rows {
			st, ok := stored[i][row.lease.JobID]
			switch {
			case !ok:
				errs = append(errs, leaseLost(op, row.lease.JobID))
			case row.want != "" && st != row.want && st == jobs.StatusCanceled:
				errs = append(errs, canceledInstead(op, row.lease.JobID, row.want))
			}
		}
	}
	return errors.Join(errs...)
}

// scanStored runs one fenced statement and records the status of each job
// it updated.
func (r *Repository) scanStored(ctx context.Context, db bun.IDB, st fencedStmt, stored map[uuid.UUID]jobs.Status) error {
	res, err := r.query(ctx, db, st.query, st.args...)
	if err != nil {
		return err
	}
	for res.Next() {
		var (
			id     uuid.UUID
			status string
		)
		if err := res.Scan(&id, &status); err != nil {
			res.Close()
			return err
		}
		stored[id] = jobs.Status(status)
	}
	return errors.Join(res.Err(), res.Close())
}

// dedupe keeps one item per key, in order: the first one when first is
// set, else the last one. It returns the items it dropped.
func dedupe[T any, K comparable](items []T, key func(T) K, first bool) (keep []T, dropped []T) {
	pick := make(map[K]int, len(items))
	for i, it := range items {
		if _, ok := pick[key(it)]; !ok || !first {
			pick[key(it)] = i
		}
	}
	if len(pick) == len(items) {
		return items, nil
	}
	for i, it := range items {
		if pick[key(it)] == i {
			keep = append(keep, it)
		} else {
			dropped = append(dropped, it)
		}
	}
	return keep, dropped
}

// leaseRows returns one fenced row per distinct lease.
func leaseRows(leases []jobs.Lease) []fencedRow {
	leases, _ = dedupe(leases, func(l jobs.Lease) jobs.Lease { return l }, true)
	rows := make([]fencedRow, len(leases))
	for i, l := range leases {
		rows[i] = fencedRow{lease: l}
	}
	return rows
}
