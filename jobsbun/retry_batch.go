package jobsbun

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/jobsmith/jobs"
)

// retryBatch retries, in the transaction db, the job id when it is a
// failed or canceled batch (see [jobs.JobRepository.Retry]): its jobs that
// did not succeed are retried (a batch among them as this one is, by
// recursion), the edges from them to the batch are stored again, and the
// batch waits with its counters and progress set as if it had been
// created now with the others done; without jobs to retry, the batch is
// retried as any job. It returns the batch as stored, or nil when id is no
// such batch (the caller tells why). The triggers stay out of it: the
// retried jobs have not ended, and the batch is not waiting yet while they
// are retried, so its progress is not moved by them.
func (r *Repository) retryBatch(ctx context.Context, db bun.IDB, id uuid.UUID, t time.Time) (*jobs.Job, error) {
	again, err := r.batchRetries(ctx, db, id)
	if err != nil || again == nil {
		return nil, err
	}
	set, args := r.retrySet(t)
	if len(again.ids) > 0 {
		for _, b := range again.batches {
			if _, err := r.retryBatch(ctx, db, b, t); err != nil {
				return nil, err
			}
		}
		if _, err := db.ExecContext(ctx, set+"WHERE batch_id = ?"+r.d.castUUID()+" AND "+retryableSQL+" AND NOT batch",
			append(args, id.String())...); err != nil {
			return nil, err
		}
		if _, err := db.ExecContext(ctx, "DELETE FROM job_output WHERE job_id IN (?)", bun.List(idStrings(again.ids))); err != nil {
			return nil, err
		}
		// Every other job of the batch has ended (batchRetries).
		if _, err := db.ExecContext(ctx, "INSERT INTO jobs_deps (parent_id, job_id) SELECT id, ?"+r.d.castUUID()+
			" FROM jobs WHERE batch_id = ?"+r.d.castUUID()+" AND status IN ('waiting', 'pending')", id.String(), id.String()); err != nil {
			return nil, err
		}
		// The batch is created anew, waiting: its share of each job
		// retried is that job's fraction (0, or a batch's own).
		n := len(again.ids)
		set = "UPDATE jobs SET status = 'waiting', " +
			"progress_fraction = (deps_total - ? + COALESCE((SELECT SUM(c.progress_fraction) FROM jobs c WHERE c.batch_id = jobs.id AND c.status = 'waiting'), 0)) * 1.0 / deps_total, " +
			"deps_left = ?, deps_failed = deps_failed - ?, " + retryCols
		args = []any{n, n, n, t, t}
	}
	rows, err := db.QueryContext(ctx, set+"WHERE id = ?"+r.d.castUUID()+" RETURNING "+r.d.jobColumns(), append(args, id.String())...)
	if err != nil {
		return nil, err
	}
	got, err := scanJobs(rows)
	if err == nil {
		err = r.withDeps(ctx, db, got)
	}
	if err != nil || len(got) == 0 {
		return nil, err
	}
	_, err = db.ExecContext(ctx, "DELETE FROM job_output WHERE job_id = ?"+r.d.castUUID(), id.String())
	return got[0], err
}

// batchRetries are the jobs of a batch that did not succeed: all of
// them, and those among them that are batches.
type batchRetries struct{ ids, batches []uuid.UUID }

// batchRetries reads, in db, the jobs to retry of the failed or canceled
// batch id, or refuses its retry with [jobs.ErrConflict]: one of its jobs
// has not ended (its end would count twice), or it has no callback and
// every job of it (and of the batches among them) succeeded, so that
// nothing would run. It returns nil when id is no such batch. On
// PostgreSQL it locks the batch's row first.
func (r *Repository) batchRetries(ctx context.Context, db bun.IDB, id uuid.UUID) (*batchRetries, error) {
	const op = "retry"
	lock := ""
	if r.d.pg {
		lock = " FOR UPDATE"
	}
	var kind string
	err := db.QueryRowContext(ctx, "SELECT kind FROM jobs WHERE id = ?"+r.d.castUUID()+" AND batch AND "+retryableSQL+lock, id.String()).Scan(&kind)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, status, batch FROM jobs WHERE batch_id = ?"+r.d.castUUID()+" ORDER BY id", id.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	again := &batchRetries{ids: []uuid.UUID{}}
	for rows.Next() {
		var (
			cid   uuid.UUID
			st    jobs.Status
			batch bool
		)
		if err := rows.Scan(&cid, &st, &batch); err != nil {
			return nil, err
		}
		switch {
		case !st.Terminal():
			return nil, newError(jobs.ErrConflict, op, id, "job %s of the batch is %s; a batch is retried once its jobs have ended", cid, st)
		case st == jobs.StatusSucceeded:
			continue
		case batch:
			again.batches = append(again.batches, cid)
		}
		again.ids = append(again.ids, cid)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, b := range again.batches {
		if sub, err := r.batchRetries(ctx, db, b); err != nil {
			return nil, err
		} else if sub == nil {
			return nil, errors.New("jobsbun: a batch of the batch to retry is not failed or canceled") // read in this transaction: cannot happen
		}
	}
	if len(again.ids) == 0 && kind == jobs.BatchKind {
		return nil, newError(jobs.ErrConflict, op, id, "every job of the batch succeeded: nothing to retry")
	}
	return again, nil
}
