package jobs

import (
	"context"

	"github.com/google/uuid"
)

// This file holds the admin operations of [Runner]: retry, cancel and
// delete, of one job or of every job that matches a filter. Each is one
// call; those of many jobs work in batches, each one short write.

// Retry runs a failed or canceled job again with a fresh attempt budget and
// returns it as stored (see [JobRepository.Retry]: it keeps its ID,
// payload, metadata and error history; its output is cleared). This runner
// starts it at once if it handles its kind; other runners at their next
// poll, or at once with a [Notifier]. A job in any other status is
// [ErrConflict] and unchanged; an unknown ID [ErrNotFound]. A batch is
// retried with its jobs that did not succeed, and runs its callback again
// once they have ended (see [JobRepository.Retry]). It is safe for
// concurrent use and needs no running Run.
func (r *Runner) Retry(ctx context.Context, id uuid.UUID) (*Job, error) {
	j, err := r.repo.Retry(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Status == StatusWaiting {
		r.depsUsed.Store(true) // the ends of its jobs let it go on
	}
	r.touch(id)
	r.notify()
	return j, nil
}

// RetryMany retries every failed or canceled job that matches q and was
// created before the call (q.Statuses narrows them; see
// [JobRepository.RetryMany]), in batches of q.Limit (0: 50, at most 1000),
// newest first, and returns how many it retried. A job retried here that
// fails again before the call returns is not retried twice. When a batch
// fails, RetryMany returns the count of the batches before it with the
// error; the jobs of those batches stay retried, and calling again goes on
// with the rest. It skips batches ([Job].Batch): Retry retries one with
// its jobs. Invalid filters are [ErrInvalidArgument].
func (r *Runner) RetryMany(ctx context.Context, q ListQuery) (int, error) {
	n, err := r.sweep(ctx, q, r.repo.RetryMany, r.touch)
	if n > 0 {
		r.notify()
	}
	return n, err
}

// CancelMany cancels every pending or running job that matches q and was
// created before the call (q.Statuses narrows them; see
// [JobRepository.CancelMany]), in batches of q.Limit (0: 50, at most 1000),
// newest first, and returns how many it canceled. Pending jobs become
// canceled; running ones are stopped as by [Runner.Cancel]: the handlers
// that run in this process have their context cancelled with cause
// [ErrCanceled] as soon as their batch is stored, and other runners stop
// theirs within their refresh interval, or at once through their
// [Notifier]. Running jobs that already had a cancel request are not
// counted. Errors are as for [Runner.RetryMany].
func (r *Runner) CancelMany(ctx context.Context, q ListQuery) (int, error) {
	n, err := r.sweep(ctx, q, r.repo.CancelMany, func(id uuid.UUID) {
		if e := r.exec(id); e != nil {
			e.cancel(ErrCanceled)
		}
		r.touch(id)
	})
	if n > 0 {
		// A canceled batch requested the cancel of its running jobs,
		// which the IDs do not name.
		r.cancelPollNow()
	}
	return n, err
}

// Delete deletes a finished job with its output (see
// [JobRepository.Delete]). A pending or running job is [ErrConflict] and
// unchanged; an unknown ID [ErrNotFound]. Watchers of the job in this
// process get [ErrNotFound] at once.
func (r *Runner) Delete(ctx context.Context, id uuid.UUID) error {
	if err := r.repo.Delete(ctx, id); err != nil {
		return err
	}
	r.touch(id)
	return nil
}

// DeleteMany deletes every finished job that matches q and was created
// before the call (q.Statuses narrows them; see [JobRepository.DeleteMany])
// with its output, in batches of q.Limit (0: 50, at most 1000), and returns
// how many it deleted. Pending and running jobs are skipped. Errors are as
// for [Runner.RetryMany].
func (r *Runner) DeleteMany(ctx context.Context, q ListQuery) (int, error) {
	return r.sweep(ctx, q, r.repo.DeleteMany, r.touch)
}

// sweep calls batch with q until a call returns no job, each call going on
// below the last job of the one before, calls each for every job, and
// returns how many jobs the calls returned.
func (r *Runner) sweep(ctx context.Context, q ListQuery, batch func(context.Context, ListQuery) ([]uuid.UUID, error), each func(uuid.UUID)) (int, error) {
	n := 0
	for {
		ids, err := batch(ctx, q)
		if err != nil {
			return n, err
		}
		if len(ids) == 0 {
			return n, nil
		}
		n += len(ids)
		for _, id := range ids {
			each(id)
		}
		q.Cursor = ids[len(ids)-1].String()
	}
}
