package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// outcomeKind says what to store for an ended attempt.
type outcomeKind int

const (
	outFinish  outcomeKind = iota // Finish with c
	outRelease                    // Release: back to pending, attempt not counted
	outDrop                       // lease lost: write nothing
)

// outcome is an ended attempt waiting to be stored.
type outcome struct {
	e    *execution
	kind outcomeKind
	c    Completion
}

// Completer tuning: one repository call stores up to maxCompleteBatch
// outcomes; a failed call is retried for up to bookkeepingTimeout. While
// jobs run, the completer waits up to lingerFor to gather lingerUntil
// outcomes per call.
const (
	maxCompleteBatch   = 500
	bookkeepingTimeout = 10 * time.Second
	lingerFor          = time.Millisecond
	lingerUntil        = 128
)

// complete hands an outcome to the completer. After the completer stopped
// (a handler that returned after Run gave up on it) the outcome is dropped:
// the job's lease expires and the rescuer takes it.
func (r *Runner) complete(o outcome) {
	select {
	case r.comp <- o:
	case <-r.compGone:
		r.cfg.logger.Error("outcome dropped after shutdown", "job_id", o.e.lease.JobID, "kind", o.e.job.Kind)
		r.endAttempt(o.e, copyJob(o.e.job), "lost")
		r.untrack(o.e)
	}
}

// completer stores outcomes in batches: while one batch is being written the
// next one gathers, so many workers share each transaction (group commit)
// without waiting for a timer. It returns when stop is closed and every
// queued outcome is stored. base carries Run's values but not its
// cancellation.
func (r *Runner) completer(base context.Context, stop <-chan struct{}) {
	defer close(r.compGone)
	batch := make([]outcome, 0, maxCompleteBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case o := <-r.comp:
			batch = append(batch[:0], o)
		case <-stop:
			for {
				batch = r.queued(batch[:0])
				if len(batch) == 0 {
					return
				}
				r.store(base, batch)
			}
		}
		batch = r.gather(batch, linger)
		r.store(base, batch)
	}
}

// gather adds the outcomes already queued to batch. While other jobs are
// still running it waits up to lingerFor for more, until the batch has
// lingerUntil outcomes, so that a busy runner stores many outcomes per
// transaction; an idle one stores at once.
func (r *Runner) gather(batch []outcome, linger *time.Timer) []outcome {
	batch = r.queued(batch)
	// Nothing more to wait for once every claimed job's outcome is here
	// (busy counts them until just after they are handed over): lingering
	// then only delays the store, and with limits the slots it frees.
	done := func() bool { return len(batch) >= lingerUntil || int(r.busy.Load()) <= len(batch) }
	if done() {
		return batch
	}
	linger.Reset(lingerFor)
	defer linger.Stop()
	for !done() {
		select {
		case o := <-r.comp:
			batch = append(batch, o)
		case <-linger.C:
			return batch
		}
	}
	return batch
}

// queued adds to batch the outcomes already queued, without waiting, up to
// maxCompleteBatch.
func (r *Runner) queued(batch []outcome) []outcome {
	for len(batch) < maxCompleteBatch {
		select {
		case o := <-r.comp:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// store writes one batch of outcomes and then tells watchers, hooks and the
// fetcher. base is detached from Run's cancellation; each batch gets a
// bounded time.
func (r *Runner) store(base context.Context, batch []outcome) {
	ctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
	defer cancel()
	var fin, rel []outcome
	for _, o := range batch {
		switch o.kind {
		case outFinish:
			fin = append(fin, o)
		case outRelease:
			rel = append(rel, o)
		default:
			r.cfg.logger.Warn("job lease lost; outcome not stored", "job_id", o.e.lease.JobID, "kind", o.e.job.Kind)
			r.forget(o, StatusRunning, nil)
		}
	}
	if len(fin) > 0 {
		errs := r.finish(ctx, fin)
		for i, o := range fin {
			r.forget(o, o.c.Status, errs[i])
		}
	}
	if len(rel) > 0 {
		leases := make([]Lease, len(rel))
		for i, o := range rel {
			leases[i] = o.e.lease
		}
		perJob, other := retryBatch(ctx, r, func(ctx context.Context) error { return r.repo.Release(ctx, leases...) })
		for _, o := range rel {
			err := perJob[o.e.lease.JobID]
			if err == nil {
				err = other
			}
			r.forget(o, StatusPending, err)
		}
	}
	if r.limits.any {
		// A limited job that ended frees its slot: claim again now
		// rather than at the next poll.
		r.notify()
	}
}

// finish stores completions and returns each one's error. A batch refused
// for one bad item (a result too large or not JSON: the repository then
// writes nothing) is stored item by item, and a refused result fails its
// job instead.
func (r *Runner) finish(ctx context.Context, fin []outcome) []error {
	cs := make([]Completion, len(fin))
	for i, o := range fin {
		cs[i] = o.c
	}
	errs := make([]error, len(fin))
	ambiguous := false // see ambiguous.go
	perJob, other := retryBatch(ctx, r, func(ctx context.Context) error {
		err := r.repo.Finish(ctx, cs...)
		ambiguous = ambiguous || transient(err)
		return err
	})
	if ambiguous && other == nil {
		r.confirmFinished(ctx, fin, perJob)
	}
	if r.depsUsed.Load() {
		r.notify()
	}
	refused := badInput(other)
	for _, err := range perJob {
		refused = refused || badInput(err)
	}
	for i, o := range fin {
		switch {
		case refused && len(fin) > 1:
			errs[i] = r.finishOne(ctx, &fin[i])
		case refused:
			errs[i] = r.failRefused(ctx, &fin[i], firstErr(perJob[o.e.lease.JobID], other))
		default:
			errs[i] = firstErr(perJob[o.e.lease.JobID], other)
		}
	}
	return errs
}

// finishOne stores one completion; a refused result fails the job.
func (r *Runner) finishOne(ctx context.Context, o *outcome) error {
	perJob, other := retryBatch(ctx, r, func(ctx context.Context) error { return r.repo.Finish(ctx, o.c) })
	err := firstErr(perJob[o.e.lease.JobID], other)
	if !badInput(err) {
		return err
	}
	return r.failRefused(ctx, o, err)
}

// failRefused stores a completion whose result the repository refused as a
// failure carrying the refusal.
func (r *Runner) failRefused(ctx context.Context, o *outcome, refusal error) error {
	o.c.Status, o.c.Result, o.c.RunAt = StatusFailed, nil, time.Time{}
	o.c.Error = "result refused: " + refusal.Error()
	if len(o.c.Output) > 0 {
		// The refusal may be the output's: the failure is stored without it.
		o.c.Output = nil
		o.c.Error = "result or output refused (output since the last checkpoint dropped): " + refusal.Error()
	}
	perJob, other := retryBatch(ctx, r, func(ctx context.Context) error { return r.repo.Finish(ctx, o.c) })
	return firstErr(perJob[o.e.lease.JobID], other)
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func badInput(err error) bool {
	c := CodeOf(err)
	return c == ErrInvalidArgument || c == ErrTooLarge
}

// retryBatch calls f until it succeeds, fails for single jobs only, fails
// with a non-transient error, or ctx ends; it returns the split errors.
func retryBatch(ctx context.Context, r *Runner, f func(context.Context) error) (map[uuid.UUID]error, error) {
	for attempt := 1; ; attempt++ {
		end := r.writes.begin()
		err := f(ctx)
		end()
		perJob, other := splitErrors(err)
		if other == nil || CodeOf(other) != ErrUnavailable && CodeOf(other) != codeInternal {
			return perJob, other
		}
		wait := backoff(attempt, 10*time.Millisecond, time.Second)
		r.cfg.logger.Warn("store outcomes", "error", other, "retry_in", wait)
		if !sleepCtx(ctx, wait) {
			return perJob, other
		}
	}
}

// forget ends the local life of an attempt once its outcome is stored (or
// could not be): watchers, hooks, retry wake-up, and removal from the
// running set.
func (r *Runner) forget(o outcome, st Status, err error) {
	e := o.e
	id := e.lease.JobID
	switch {
	case errors.Is(err, ErrCanceled):
		// Stored, as canceled: a cancel was requested before it landed.
		st = StatusCanceled
	case errors.Is(err, ErrLeaseLost):
		r.cfg.logger.Warn("job lease lost; outcome not stored", "job_id", id, "kind", e.job.Kind)
		st = StatusRunning
	case err != nil:
		r.cfg.logger.Error("store outcome", "job_id", id, "kind", e.job.Kind, "status", st, "error", err)
		st = StatusRunning
	}
	if st != StatusRunning {
		e.stored(st, o.c.Error, o.c.Progress)
		r.outcomeHooks(o, st)
		if st == StatusPending && o.kind == outFinish {
			r.wakeAt(o.c.RunAt)
		}
	} else {
		r.endAttempt(e, copyJob(e.job), "lost")
	}
	r.untrack(e)
}

// untrack removes an ended attempt from the running set and wakes its
// watchers, who then read the repository.
func (r *Runner) untrack(e *execution) {
	id := e.lease.JobID
	r.emu.Lock()
	if r.execs[id] == e {
		delete(r.execs, id)
	}
	r.emu.Unlock()
	r.touch(id)
}
