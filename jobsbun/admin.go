package jobsbun

import (
	"bytes"
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

// This file holds the admin operations of [Repository]: retry, cancel and
// delete, of one job or of a batch that matches a filter. A batch is one
// statement (with the deletion of output, one transaction on SQLite): its
// subquery walks the primary key newest first, like List, and its outer
// WHERE re-checks the status, so that a job that changed meanwhile (on
// PostgreSQL, under READ COMMITTED) is skipped instead of changed twice.
// The runners of this process that subscribed to the repository hear of
// the jobs changed at once (Ready for retries, Canceled for running jobs
// asked to cancel, Changed for all); on PostgreSQL the triggers of
// schema_notify.go tell every listener.

// retrySet is the SET clause of a retry and its arguments: the job is
// pending at once, with the fields of a new job, and keeps its history.
// Its fair rank is -1, so the next claim ranks it as a job that came due
// (promote, fair.go): after the pending jobs of its key.
func (r *Repository) retrySet(t time.Time) (string, []any) {
	return "UPDATE jobs SET status = 'pending', progress_fraction = 0, " + retryCols, []any{t, t}
}

// retryCols ends the SET clause of a retry, after its status and
// progress: its arguments are the run-at and updated-at times.
const retryCols = "attempt = 0, run_at = ?, fair_rank = -1, result = NULL, " +
	"progress_message = '', checkpoint = NULL, output_seq = 0, cancel_requested = FALSE, started_at = NULL, " +
	"finished_at = NULL, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ? "

// cancelSet is the SET clause of a cancel (RequestCancel, CancelMany) and
// its arguments: a pending or waiting job is canceled at once, a running
// one gets the request (its updated_at unchanged when it had one already).
func (r *Repository) cancelSet(t time.Time) (string, []any) {
	return "UPDATE jobs SET " +
		"status = CASE WHEN status IN ('waiting', 'pending') THEN 'canceled' ELSE status END, " +
		"finished_at = CASE WHEN status IN ('waiting', 'pending') THEN ?" + r.d.castTime() + " ELSE finished_at END, " +
		"cancel_requested = TRUE, " +
		"updated_at = CASE WHEN status = 'running' AND cancel_requested THEN updated_at ELSE ?" + r.d.castTime() + " END ", []any{t, t}
}

const (
	retryableSQL = "status IN ('failed', 'canceled')"
	finishedSQL  = "status IN ('succeeded', 'failed', 'canceled')"
	// cancelableSQL skips running jobs that were asked to cancel already,
	// so that a sweep ends.
	cancelableSQL = "(status IN ('waiting', 'pending') OR (status = 'running' AND NOT cancel_requested))"
)

// Retry implements [jobs.JobRepository.Retry] with one conditional UPDATE
// and the deletion of the job's output, in one transaction (a batch:
// retryBatch); only when it matches nothing does a read tell ErrNotFound
// from ErrConflict.
func (r *Repository) Retry(ctx context.Context, id uuid.UUID) (*jobs.Job, error) {
	const op = "retry"
	t := rules.Now()
	set, args := r.retrySet(t)
	var got []*jobs.Job
	err := r.write(ctx, op, true, func(ctx context.Context, db bun.IDB) error {
		rows, err := db.QueryContext(ctx, set+"WHERE id = ? AND "+retryableSQL+" AND NOT batch RETURNING "+r.d.jobColumns(), append(args, id.String())...)
		if err != nil {
			return err
		}
		if got, err = scanJobs(rows); err == nil {
			err = r.withDeps(ctx, db, got)
		}
		if err != nil {
			return err
		}
		if len(got) == 0 {
			// A batch, retried with its jobs; or nothing to retry.
			b, err := r.retryBatch(ctx, db, id, t)
			if b != nil {
				got = []*jobs.Job{b}
			}
			return err
		}
		_, err = db.ExecContext(ctx, "DELETE FROM job_output WHERE job_id = ?"+r.d.castUUID(), id.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, r.conflict(ctx, op, id, "only failed or canceled jobs can be retried")
	}
	r.commits.publish(jobs.Event{Ready: true, Changed: []uuid.UUID{id}})
	return got[0], nil
}

// RetryMany implements [jobs.JobRepository.RetryMany].
func (r *Repository) RetryMany(ctx context.Context, q jobs.ListQuery) ([]uuid.UUID, error) {
	const op = "retry many"
	set, args := r.retrySet(rules.Now())
	var ids []uuid.UUID
	// A batch is retried by Retry, with its jobs.
	err := r.batch(ctx, op, true, q, retryableSQL+" AND NOT batch", []jobs.Status{jobs.StatusFailed, jobs.StatusCanceled}, set, args,
		func(ctx context.Context, db bun.IDB, query string, args []any) error {
			var err error
			if ids, _, err = scanIDs(db.QueryContext(ctx, query+" RETURNING id, status", args...)); err != nil || len(ids) == 0 {
				return err
			}
			_, err = db.ExecContext(ctx, "DELETE FROM job_output WHERE job_id IN (?)", bun.List(idStrings(ids)))
			return err
		})
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		r.commits.publish(jobs.Event{Ready: true, Changed: ids})
	}
	return nonNil(ids), nil
}

// CancelMany implements [jobs.JobRepository.CancelMany].
func (r *Repository) CancelMany(ctx context.Context, q jobs.ListQuery) ([]uuid.UUID, error) {
	const op = "cancel many"
	set, args := r.cancelSet(rules.Now())
	var ids, running []uuid.UUID
	err := r.batch(ctx, op, false, q, cancelableSQL, []jobs.Status{jobs.StatusWaiting, jobs.StatusPending, jobs.StatusRunning}, set, args,
		func(ctx context.Context, db bun.IDB, query string, args []any) error {
			var err error
			ids, running, err = scanIDs(db.QueryContext(ctx, query+" RETURNING id, status", args...))
			return err
		})
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		r.commits.publish(jobs.Event{Canceled: running, Changed: ids})
	}
	return nonNil(ids), nil
}

// Delete implements [jobs.JobRepository.Delete] with one conditional
// DELETE (and of the job's output); only when it matches nothing does a
// read tell ErrNotFound from ErrConflict.
func (r *Repository) Delete(ctx context.Context, id uuid.UUID) error {
	const op = "delete"
	var ids []uuid.UUID
	err := r.write(ctx, op, r.d.sqlite(), func(ctx context.Context, db bun.IDB) error {
		var err error
		ids, err = r.deleteJobs(ctx, db, "DELETE FROM jobs WHERE id = ?"+r.d.castUUID()+" AND "+finishedSQL, id.String())
		return err
	})
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return r.conflict(ctx, op, id, "only finished jobs can be deleted")
	}
	r.commits.publish(jobs.Event{Changed: ids})
	return nil
}

// DeleteMany implements [jobs.JobRepository.DeleteMany].
func (r *Repository) DeleteMany(ctx context.Context, q jobs.ListQuery) ([]uuid.UUID, error) {
	const op = "delete many"
	var ids []uuid.UUID
	err := r.batch(ctx, op, r.d.sqlite(), q, finishedSQL, []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}, "DELETE FROM jobs ", nil,
		func(ctx context.Context, db bun.IDB, query string, args []any) error {
			var err error
			ids, err = r.deleteJobs(ctx, db, query, args...)
			return err
		})
	if err != nil {
		return nil, err
	}
	sortNewestFirst(ids)
	if len(ids) > 0 {
		r.commits.publish(jobs.Event{Changed: ids})
	}
	return nonNil(ids), nil
}

// batch runs one batch of an admin operation: the statement head (an
// UPDATE … SET … or a DELETE FROM jobs, with its arguments) restricted to
// the jobs that match q, whose status is one of allowed and meets cond, at
// most q's limit of them, newest first, below q's cursor. run executes the
// statement (adding what it returns) in the write, a transaction when tx
// is set. It does nothing, and returns nil, when q's statuses leave none
// of allowed.
func (r *Repository) batch(ctx context.Context, op string, tx bool, q jobs.ListQuery, cond string, allowed []jobs.Status, head string, args []any,
	run func(ctx context.Context, db bun.IDB, query string, args []any) error) error {
	if err := r.read(op); err != nil {
		return err
	}
	limit, after, err := q.Page()
	if err != nil {
		return renamed(op, err)
	}
	statuses := allowed
	if len(q.Statuses) > 0 {
		statuses = slices.DeleteFunc(slices.Clone(q.Statuses), func(s jobs.Status) bool { return !slices.Contains(allowed, s) })
		if len(statuses) == 0 {
			return nil
		}
	}
	var sub strings.Builder
	sub.WriteString("SELECT id FROM jobs WHERE " + cond)
	args = r.filter(&sub, slices.Clone(args), statuses, q, after)
	sub.WriteString(" ORDER BY id DESC LIMIT ?")
	args = append(args, limit)
	query := head + "WHERE " + r.d.idIn(sub.String()) + " AND " + cond
	return r.write(ctx, op, tx, func(ctx context.Context, db bun.IDB) error {
		return run(ctx, db, query, args)
	})
}

// filter appends to b the conditions of List's filter q (" AND …", for the
// given statuses, before the cursor ID after unless it is uuid.Nil) and
// returns args with their arguments appended.
func (r *Repository) filter(b *strings.Builder, args []any, statuses []jobs.Status, q jobs.ListQuery, after uuid.UUID) []any {
	if len(statuses) > 0 {
		st := make([]string, len(statuses))
		for i, s := range statuses {
			st[i] = string(s)
		}
		b.WriteString(" AND status IN (?)")
		args = append(args, bun.List(st))
	}
	if q.Kind != "" {
		b.WriteString(" AND kind = ?")
		args = append(args, q.Kind)
	}
	if q.Queue != "" {
		b.WriteString(" AND queue = ?")
		args = append(args, q.Queue)
	}
	if !q.CreatedBefore.IsZero() {
		b.WriteString(" AND created_at < ?" + r.d.castTime())
		args = append(args, q.CreatedBefore.UTC())
	}
	if after != uuid.Nil {
		b.WriteString(" AND id < ?" + r.d.castUUID())
		args = append(args, after.String())
	}
	return args
}

// conflict is the error of a single-job admin operation that matched
// nothing: ErrNotFound when the job does not exist, else ErrConflict with
// its status and why.
func (r *Repository) conflict(ctx context.Context, op string, id uuid.UUID, why string) error {
	j, err := r.Get(ctx, id)
	if err != nil {
		return renamed(op, err)
	}
	return newError(jobs.ErrConflict, op, id, "job is %s; %s", j.Status, why)
}

// renamed returns err with its operation set to op when it is a
// [*jobs.Error] of another (the shared validation of ListQuery names
// "list"; a read names "get").
func renamed(op string, err error) error {
	if e, ok := errors.AsType[*jobs.Error](err); ok && e.Op != op {
		c := *e
		c.Op = op
		return &c
	}
	return err
}

// scanIDs reads the rows (id, status) of a RETURNING clause and returns the
// IDs, newest first, and those whose status is running. It closes rows.
func scanIDs(rows *sql.Rows, err error) (ids, running []uuid.UUID, _ error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id     uuid.UUID
			status string
		)
		if err := rows.Scan(&id, &status); err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		if jobs.Status(status) == jobs.StatusRunning {
			running = append(running, id)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, nil, err
	}
	sortNewestFirst(ids)
	return ids, running, nil
}

// sortNewestFirst sorts IDs in descending order (UUIDv7: newest first).
func sortNewestFirst(ids []uuid.UUID) {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(b[:], a[:]) })
}

// nonNil returns ids, or an empty slice for nil.
func nonNil(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// idStrings returns the IDs as text.
func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
