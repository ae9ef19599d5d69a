package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Cancel cancels a job and returns it as stored after the call. A pending job
// becomes canceled at once. A running job gets a durable cancel request: when
// it runs in this process its handler's context is cancelled at once with
// cause [ErrCanceled]; another runner sees the request within its refresh
// interval ([WithRefreshInterval]), or at once through its [Notifier].
//
// A nil error means the job ends canceled and is not retried: the request
// wins over whatever the handler returns after it, even a result it had
// already returned but that was not yet stored (the result is then
// dropped). When the job's outcome was stored first, Cancel returns
// [ErrConflict] and the job keeps that outcome (Get tells which); an
// unknown ID is [ErrNotFound]. A call that fails while its request may have
// been stored (ctx ended during the write) reads the job back and returns
// it with a nil error when the request is stored; an [ErrUnavailable] error
// therefore means the request was not seen stored, and calling Cancel again
// is safe. A handler running in this process is stopped
// before the request is stored, so it stops even when storing the request
// fails.
//
// Canceling a waiting batch (see [Job.Batch]) cancels its jobs that have
// not ended: the handlers of those that run in this process are stopped
// right after, with one query for this runner's cancel requests.
func (r *Runner) Cancel(ctx context.Context, id uuid.UUID) (*Job, error) {
	// A job running here is stopped first, without waiting for the write.
	local := r.exec(id)
	if local != nil && local.ctx.Err() != nil {
		local = nil // already stopped (by an earlier Cancel, say): not this call's doing
	}
	if local != nil {
		local.cancel(ErrCanceled)
	}
	j, err := r.repo.RequestCancel(ctx, id)
	switch {
	case errors.Is(err, ErrConflict) && local != nil:
		// The local attempt this call stopped may have stored its canceled
		// outcome first.
		if cur, gerr := r.repo.Get(ctx, id); gerr == nil && cur.Status == StatusCanceled {
			j, err = cur, nil
		}
	case CodeOf(err) == ErrUnavailable || CodeOf(err) == codeInternal:
		// The request may be stored although the call failed (ctx ended
		// while the statement ran): read it back, so that an error means
		// the request is not stored as far as the database can tell.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
		cur, gerr := r.repo.Get(rctx, id)
		cancel()
		if gerr == nil && (cur.CancelRequested || cur.Status == StatusCanceled) {
			j, err = cur, nil
		}
	}
	if err != nil {
		return nil, err
	}
	r.touch(id)
	if j.Batch {
		r.canceledBatch(j)
	}
	return j, nil
}

// canceledBatch follows the cancel of a batch: the watchers of its jobs
// read them again, and the cancel poll looks at once for the cancel
// requests that the repository stored in the same write for those of its
// jobs that run here (it alone knows which jobs it asked: not those that
// had ended, nor one an operator retried since).
func (r *Runner) canceledBatch(b *Job) {
	for _, id := range b.DependsOn {
		r.touch(id)
	}
	r.cancelPollNow()
}

// confirmTimeout bounds the read that confirms the outcome of a write whose
// call failed.
const confirmTimeout = 5 * time.Second

// cancelPollLoop picks up cancel requests made by other processes for the
// jobs running here, with one cheap query per refresh interval while any
// run.
func (r *Runner) cancelPollLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.pollCancels:
		}
		r.emu.Lock()
		n := len(r.execs)
		r.emu.Unlock()
		if n == 0 {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, r.cfg.lease/3)
		ids, err := r.repo.CancelRequests(qctx, r.cfg.owner)
		cancel()
		if err != nil {
			r.cfg.logger.Warn("poll cancel requests", "error", err)
			continue
		}
		for _, id := range ids {
			if e := r.exec(id); e != nil {
				e.cancel(ErrCanceled)
			}
		}
	}
}
