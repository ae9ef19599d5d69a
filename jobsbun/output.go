package jobsbun

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds a job's output (table job_output, schema_output.go): how
// it is read, and how SQLite appends it after the fenced write that raised
// output_seq (on PostgreSQL that write appends it itself; see
// sqlDialect.withOutput).

// outputStmtBytes is about the most bytes of output items one fenced
// statement carries on PostgreSQL (at least one row's).
const outputStmtBytes = 4 << 20

// readOutputSQL reads the items of a job after a number, in order, and
// then one row of NULLs when the job exists: no row at all means no such
// job. The items are one range of job_output's primary key, read in order
// and cut at the limit (a join with jobs would make PostgreSQL read and
// sort every item after the number, for each page), the job one row of
// jobs' primary key. Arguments: the job ID, after, limit, the job ID.
func readOutputSQL(d sqlDialect) string {
	return "SELECT * FROM (SELECT seq, data FROM job_output WHERE job_id = ?" + d.castUUID() +
		" AND seq > ? ORDER BY seq LIMIT " + d.limitArg() + ") AS _o " +
		"UNION ALL SELECT NULL, NULL FROM jobs WHERE id = ?" + d.castUUID()
}

// ReadOutput implements [jobs.JobRepository.ReadOutput] with one query.
func (r *Repository) ReadOutput(ctx context.Context, id uuid.UUID, after int64, limit int) ([]jobs.OutputItem, error) {
	const op = "read output"
	if err := refused(op, rules.OutputRead(after, limit)); err != nil {
		return nil, err
	}
	if err := r.read(op); err != nil {
		return nil, err
	}
	rows, err := r.query(ctx, r.db, readOutputSQL(r.d), id.String(), after, limit, id.String())
	if err != nil {
		return nil, storageError(op, id, err)
	}
	defer rows.Close()
	items := []jobs.OutputItem{}
	found := false
	var (
		seq  sql.NullInt64
		data rawJSON
	)
	for rows.Next() {
		found = true
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, storageError(op, id, err)
		}
		if seq.Valid {
			items = append(items, jobs.OutputItem{Seq: seq.Int64, Data: []byte(data)})
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, storageError(op, id, err)
	}
	if !found {
		return nil, notFound(op, id)
	}
	// In order already (UNION ALL keeps its parts' order); sorting is
	// only a guard, which SQL does not promise.
	if !slices.IsSortedFunc(items, byOutputSeq) {
		slices.SortFunc(items, byOutputSeq)
	}
	return items, nil
}

func byOutputSeq(a, b jobs.OutputItem) int { return cmp.Compare(a.Seq, b.Seq) }

// outputRows is the most items one INSERT of insertOutput carries (3
// values each).
const outputRows = 64

// insertOutputSQL holds the INSERT statements of 1, 2, 4, … outputRows
// items: insertOutputSQL[k] has 1<<k rows. OR ROLLBACK: the write fails
// as a whole anyway, so SQLite keeps no statement journal.
var insertOutputSQL = func() []string {
	var out []string
	for n := 1; n <= outputRows; n *= 2 {
		var b strings.Builder
		b.WriteString("INSERT OR ROLLBACK INTO job_output (job_id, seq, data) VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
		}
		out = append(out, b.String())
	}
	return out
}()

// insertOutput appends, on SQLite, the items of the rows of one fenced
// statement with output that it updated without leaving them pending,
// numbered after the output_seq each had: its new one, from out, less its
// number of items. db is the write's transaction. It uses cached prepared
// INSERTs of outputRows items, the rest with the statements of the powers
// of two that make it up.
func (r *Repository) insertOutput(ctx context.Context, db bun.IDB, rows []fencedRow, out map[uuid.UUID]stored) error {
	var args []any
	n := 0
	flush := func() error {
		for n > 0 {
			k := bits.Len(uint(min(n, outputRows))) - 1
			m := 1 << k
			if err := r.exec(ctx, db, insertOutputSQL[k], args[:3*m]...); err != nil {
				return err
			}
			args, n = args[3*m:], n-m
		}
		args = args[:0]
		return nil
	}
	for _, row := range rows {
		st, ok := out[row.lease.JobID]
		if !ok || st.status == jobs.StatusPending || len(row.items) == 0 {
			continue
		}
		id := row.lease.JobID.String()
		base := st.seq - int64(len(row.items))
		for i, it := range row.items {
			args = append(args, id, base+int64(i)+1, string(it))
			if n++; n == outputRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// pruneJobs runs del, Prune's DELETE of one batch of jobs (arguments: the
// time and the batch size), with deleteJobs, and returns how many it
// deleted.
func (r *Repository) pruneJobs(ctx context.Context, db bun.IDB, del string, before time.Time) (int64, error) {
	ids, err := r.deleteJobs(ctx, db, del, before, pruneBatch)
	return int64(len(ids)), err
}

// deleteJobs runs del, a DELETE FROM jobs … without RETURNING, deletes the
// output of the jobs it deleted and returns their IDs. On PostgreSQL it is
// one statement; on SQLite the delete trigger of schema_counts.go deletes
// the output of each job deleted, in the same statement.
func (r *Repository) deleteJobs(ctx context.Context, db bun.IDB, del string, args ...any) ([]uuid.UUID, error) {
	query := del + " RETURNING id"
	if r.d.pg {
		query = "WITH _d AS (" + del + " RETURNING id, output_seq), " +
			"_o AS (DELETE FROM job_output WHERE job_id IN (SELECT id FROM _d WHERE output_seq <> 0)) " +
			"SELECT id FROM _d"
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	return ids, nil
}
