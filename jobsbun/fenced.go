package jobsbun

import (
	"context"
	"encoding/json"
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
// RETURNING id, status tells which leases held and what was stored. A
// batch whose rows carry output items also appends them, in the same write
// (see fencedBatch.output).

// maxBatchRows is the most rows one batch statement carries.
const maxBatchRows = 1024

// fencedRow is one job of a fenced batch write: its lease, the values of
// the batch's extra columns, for Finish the status it asks for, and the
// output items it appends (a batch with output only).
type fencedRow struct {
	lease jobs.Lease
	data  []any
	want  jobs.Status // "" when the write does not change the status
	items []json.RawMessage
}

// fencedBatch is the rows of a fenced update with its columns and SET
// clause. set gets the time of the write, taken once the write holds the
// database's write lock, and returns the SET clause, which may use the
// columns d_id, d_token and cols, with its arguments appended to args.
//
// When output is set, the rows carry output items: the batch has the
// column d_n, the number of a row's items, and set must add it to
// output_seq unless the row is left pending (a retry drops its items).
// Every row updated but not left pending gets its items appended,
// numbered after the output_seq it had (output.go), in the same write.
type fencedBatch struct {
	cols   []batchCol
	rows   []fencedRow
	set    func(args []any, t time.Time) (string, []any)
	output bool
}

// fencedStmt is one statement of a fenced write, the round it belongs to
// and, in a batch with output, the rows it carries.
type fencedStmt struct {
	query  string
	args   []any
	round  int
	output bool
	rows   []fencedRow
}

// stored is what a fenced statement stored for a job: its status, its
// output_seq (batches with output only) and whether jobs depend on it.
type stored struct {
	status        jobs.Status
	seq           int64
	hasDependents bool
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
			out = append(out, fencedBatch{cols: b.cols, set: b.set, output: b.output})
		}
		out[k].rows = append(out[k].rows, row)
	}
	return out
}

// allCols are the columns of the batch's table on dialect d: the lease, the
// batch's own and, with output, d_n (and on PostgreSQL d_items, the items
// as one JSON array: the statement appends them itself).
func (b fencedBatch) allCols(d sqlDialect) []batchCol {
	all := append(leaseCols[:len(leaseCols):len(leaseCols)], b.cols...)
	if b.output {
		all = append(all, outputCols(d)...)
	}
	return all
}

// chunks splits the rows into the [lo, hi) ranges of one statement each:
// at most d.batchRows rows, and with output on PostgreSQL at most about
// outputStmtBytes of items (at least one row).
func (b fencedBatch) chunks(d sqlDialect) [][2]int {
	per := d.batchRows(len(b.allCols(d)))
	var out [][2]int
	if !b.output || d.sqlite() {
		for lo := 0; lo < len(b.rows); lo += per {
			out = append(out, [2]int{lo, min(lo+per, len(b.rows))})
		}
		return out
	}
	for lo := 0; lo < len(b.rows); {
		hi, size := lo, 0
		for hi < len(b.rows) && hi-lo < per {
			n := itemBytes(b.rows[hi].items)
			if hi > lo && size+n > outputStmtBytes {
				break
			}
			size += n
			hi++
		}
		out = append(out, [2]int{lo, hi})
		lo = hi
	}
	return out
}

// stmts appends the batch's statements at time t to out, as round round:
// one per chunk of rows.
func (b fencedBatch) stmts(d sqlDialect, t time.Time, round int, out []fencedStmt) []fencedStmt {
	all := b.allCols(d)
	for _, c := range b.chunks(d) {
		chunk := b.rows[c[0]:c[1]]
		values := make([][]any, len(chunk))
		for i, row := range chunk {
			v := make([]any, 0, len(all))
			v = append(append(v, row.lease.JobID.String(), row.lease.Token), row.data...)
			if b.output {
				v = outputValues(d, v, row.items)
			}
			values[i] = v
		}
		table, args := d.batchTable(all, values)
		setSQL, args := b.set(args, t)
		update := "UPDATE " + d.orRollback() + "jobs SET " + setSQL +
			" FROM _data WHERE id = d_id AND lease_token = d_token AND status = 'running' RETURNING id, status, has_dependents"
		st := fencedStmt{query: "WITH _data AS (" + table + ") " + update, args: args, round: round}
		if b.output {
			st.query, st.output, st.rows = d.withOutput(table, update), true, chunk
		}
		out = append(out, st)
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
	stmts, output := 0, false
	for _, b := range rounds {
		stmts += len(b.chunks(r.d))
		output = output || b.output
	}
	// On SQLite, output is a second statement (output.go).
	tx := stmts > 1 || (renews || output) && r.d.sqlite()
	result := make([]map[uuid.UUID]stored, len(rounds))
	err := r.write(ctx, op, tx, func(ctx context.Context, db bun.IDB) error {
		t := rules.Now()
		var all []fencedStmt
		for i, b := range rounds {
			all = b.stmts(r.d, t, i, all)
			result[i] = make(map[uuid.UUID]stored, len(b.rows))
		}
		for _, st := range all {
			if err := r.scanStored(ctx, db, st, result[st.round]); err != nil {
				return err
			}
			if st.output && r.d.sqlite() {
				if err := r.insertOutput(ctx, db, st.rows, result[st.round]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	released := false
	for i, b := range rounds {
		for _, row := range b.rows {
			st, ok := result[i][row.lease.JobID]
			released = released || ok && st.hasDependents && st.status.Terminal()
			switch {
			case !ok:
				errs = append(errs, leaseLost(op, row.lease.JobID))
			case row.want != "" && st.status != row.want && st.status == jobs.StatusCanceled:
				errs = append(errs, canceledInstead(op, row.lease.JobID, row.want))
			}
		}
	}
	if released {
		// A job that waited for these may be pending now (schema_deps.go):
		// this process's runners look at once (PostgreSQL's notification
		// tells every process).
		r.commits.publish(jobs.Event{Ready: true})
	}
	return errors.Join(errs...)
}

// scanStored runs one fenced statement and records what it stored for each
// job it updated.
func (r *Repository) scanStored(ctx context.Context, db bun.IDB, st fencedStmt, out map[uuid.UUID]stored) error {
	res, err := r.query(ctx, db, st.query, st.args...)
	if err != nil {
		return err
	}
	var (
		id      uuid.UUID
		status  string
		hasDeps bool
		seq     int64
	)
	dest := []any{&id, &status, &hasDeps}
	if st.output {
		dest = append(dest, &seq)
	}
	for res.Next() {
		if err := res.Scan(dest...); err != nil {
			res.Close()
			return err
		}
		out[id] = stored{jobs.Status(status), seq, hasDeps}
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
