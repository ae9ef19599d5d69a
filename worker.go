package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jobsmith/jobs/internal/rules"
)

// Claiming: the fetcher claims as many jobs as there are free slots. While
// handlers are short (their moving average is under prefetchBelow, and a
// worker became free within prefetchFresh) it also keeps up to
// prefetchFactor×concurrency claimed jobs buffered, so that a stream of
// small jobs costs one claim transaction per batch, not per job. Long jobs
// are never claimed ahead of a free worker, so that other runners get them;
// and buffered jobs that wait because every worker is stuck in a long job
// are given back after giveBackAfter.
const (
	prefetchBelow  = time.Millisecond
	prefetchFresh  = 10 * time.Millisecond
	prefetchFactor = 32
	giveBackAfter  = 100 * time.Millisecond
)

// capacity returns how many jobs may be claimed and not yet ended.
func (r *Runner) capacity() int {
	c := r.cfg.concurrency
	avg := r.avgDur.Load()
	if avg >= 0 && avg < int64(prefetchBelow) && r.sinceFreed() < prefetchFresh {
		c += c * prefetchFactor
	}
	return min(c, max(r.cfg.concurrency, rules.MaxClaimLimit))
}

// sinceFreed returns the time since a worker last finished a job.
func (r *Runner) sinceFreed() time.Duration {
	return time.Since(time.Unix(0, r.lastFreed.Load()))
}

// giveBackLoop hands buffered jobs back to pending when no worker has
// become free for giveBackAfter: the jobs ahead of them turned out long,
// and another runner may be idle.
func (r *Runner) giveBackLoop(ctx context.Context) {
	t := time.NewTicker(giveBackAfter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(r.work) == 0 || r.sinceFreed() < giveBackAfter || r.stopping.Load() {
			continue
		}
		n := 0
	drain:
		for {
			select {
			case e, ok := <-r.work:
				if !ok {
					break drain
				}
				e.end()
				r.complete(outcome{e: e, kind: outRelease})
				n++
			default:
				break drain
			}
		}
		if n > 0 {
			r.busy.Add(-int64(n))
			r.cfg.logger.Debug("claimed jobs given back", "count", n)
		}
	}
}

// claimLimit returns how many jobs to claim now, or 0 to wait for a slot.
// With buffered jobs left it waits until half the capacity is free, so that
// claims come in batches.
func (r *Runner) claimLimit() int {
	c := r.capacity()
	free := c - int(r.busy.Load())
	if free <= 0 || (len(r.work) > 0 && free < c/2) {
		return 0
	}
	return min(free, rules.MaxClaimLimit)
}

// fetch claims jobs and hands them to the workers until ctx is done. It
// claims again at once while work is available, and otherwise waits for a
// local enqueue, a freed slot or the poll interval.
func (r *Runner) fetch(ctx, base context.Context, kinds []string) error {
	idle := time.NewTimer(r.cfg.poll)
	defer idle.Stop()
	var failures int
	for {
		limit := r.claimLimit()
		if limit == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-r.freed:
				continue
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		start, paused := time.Now(), r.pauses.claimSeq()
		var next time.Time // when a rate limit lets a held-back job start
		js, err := r.claim(ctx, base, ClaimQuery{Owner: r.cfg.owner, Queues: r.cfg.queues,
			Kinds: kinds, Limit: limit, LeaseDuration: r.cfg.lease,
			KindLimits: r.limits.kinds, QueueLimits: r.limits.queues, NextStart: &next})
		if ctx.Err() != nil {
			// Shutdown came during the claim: its jobs are handed back.
			r.stopping.Store(true)
		}
		if err != nil {
			if CodeOf(err) == ErrClosed {
				return err
			}
			failures++
			wait := backoff(failures, 200*time.Millisecond, 5*time.Second) // at least 100 ms: no hot loop
			r.cfg.logger.Warn("claim jobs", "error", err, "retry_in", wait)
			if !sleepCtx(ctx, wait) {
				return nil
			}
			continue
		}
		failures = 0
		r.dispatch(base, js, paused, start, time.Now())
		if len(js) == limit {
			continue // there may be more
		}
		if !next.IsZero() {
			// A rate limit holds jobs back: claim again when it lets
			// one start, not before (unless woken for another reason).
			r.wakeAt(next)
		}
		idle.Reset(r.cfg.poll)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-idle.C:
		}
	}
}

// claim claims jobs with a call that nothing cancels: a claim whose context
// ended just after it committed would report an error for jobs it took,
// and they would wait for their leases to expire, with an attempt counted
// that no handler ran. When ctx (Run's) ends first, claim still waits for
// the call, up to the grace period and the stop timeout, and returns what
// it claimed for the workers to hand back; a call that takes longer than
// that (the database is locked) is left behind, and what it claims waits
// for the rescuer.
func (r *Runner) claim(ctx, base context.Context, q ClaimQuery) ([]*Job, error) {
	type result struct {
		js  []*Job
		err error
	}
	done := make(chan result, 1)
	end := r.writes.begin()
	go func() {
		js, err := r.repo.Claim(base, q)
		end()
		done <- result{js, err}
	}()
	select {
	case res := <-done:
		return res.js, res.err
	case <-ctx.Done():
	}
	t := time.NewTimer(r.cfg.grace + r.cfg.stopTimeout)
	defer t.Stop()
	select {
	case res := <-done:
		return res.js, res.err
	case <-t.C:
		r.cfg.logger.Error("claim still waiting for the database at shutdown; its jobs wait for their leases to expire")
		return nil, context.Cause(ctx)
	}
}

// dispatch registers claimed jobs and queues them for the workers.
//
// A claim's lease runs from when it landed, between start and done, the
// call's start and end. Repositories grant it from then (after any wait
// for the database), and the lease's end as returned tells when: the
// claim counts from then, but never from later than done nor earlier than
// start. Counting from start would give up, at once, every job of a claim
// that waited out a write outage; from done, a lease granted before the
// process was paused could be taken for a fresh one.
//
// paused is the pause sequence noted before the claim started (pause.go).
func (r *Runner) dispatch(base context.Context, js []*Job, paused uint64, start, done time.Time) {
	if len(js) == 0 {
		return
	}
	es := make([]*execution, len(js))
	r.emu.Lock()
	for i, j := range js {
		claimed := j.LeaseExpiresAt.Add(-r.cfg.lease)
		if claimed.After(done) {
			claimed = done
		}
		if claimed.Before(start) {
			claimed = start
		}
		es[i] = newExecution(r, base, j, claimed)
		es[i].paused = paused
		r.execs[j.ID] = es[i]
	}
	r.emu.Unlock()
	r.busy.Add(int64(len(es)))
	for _, e := range es {
		r.touch(e.lease.JobID)
		r.work <- e // never blocks: busy ≤ capacity ≤ cap(work)
	}
}

// worker runs queued jobs until the work channel is closed.
func (r *Runner) worker() {
	for e := range r.work {
		o := r.execute(e)
		r.lastFreed.Store(time.Now().UnixNano()) // the handler returned
		r.complete(o)
		r.busy.Add(-1)
		select {
		case r.freed <- struct{}{}:
		default:
		}
	}
}

// execute runs one attempt, or skips it when the runner stops or the job was
// canceled first, and returns its outcome.
func (r *Runner) execute(e *execution) outcome {
	if r.stopping.Load() && e.ctx.Err() == nil {
		e.end()
		return outcome{e: e, kind: outRelease}
	}
	if r.pauses.heldBack(e.job.Queue, e.paused) && e.ctx.Err() == nil {
		// Claimed before its queue was paused here: it waits for the resume.
		r.cfg.logger.Debug("job held back: queue paused", "job_id", e.lease.JobID, "queue", e.job.Queue)
		e.end()
		return outcome{e: e, kind: outRelease}
	}
	h := r.handler(e.job.Kind)
	ctx := e.ctx
	timeout := e.job.Timeout
	if timeout == 0 && h != nil {
		timeout = h.timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrTimeout)
		defer cancel()
	}
	var (
		res json.RawMessage
		err error
	)
	if ctx.Err() == nil {
		r.hookJob(func(h *Hooks) func(*Job) { return h.OnStarted }, "started", e.job)
		r.cfg.logger.Debug("job started", "job_id", e.lease.JobID, "kind", e.job.Kind, "attempt", e.attempt)
		hctx := r.attemptHooks(ctx, e)
		start := time.Now()
		res, err = r.call(hctx, h, e)
		r.observe(time.Since(start))
	} else {
		err = context.Cause(ctx)
	}
	o := r.classify(e, ctx, res, err)
	e.cancel(context.Canceled) // release the context's resources
	return o
}

// call runs the handler, turning a panic into an error.
func (r *Runner) call(ctx context.Context, h *handler, e *execution) (res json.RawMessage, err error) {
	if h == nil {
		return nil, Permanent(newError(ErrUnknownKind, "run", e.lease.JobID, "no handler for kind %q", e.job.Kind))
	}
	defer func() {
		if v := recover(); v != nil {
			r.cfg.logger.Error("handler panicked", "job_id", e.lease.JobID, "kind", e.job.Kind,
				"attempt", e.attempt, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("panic: %v", v)
		}
	}()
	return h.fn(ctx, e.job, e)
}

// observe folds one handler run time into the moving average.
func (r *Runner) observe(d time.Duration) {
	old := r.avgDur.Load()
	if old < 0 {
		r.avgDur.Store(int64(d))
		return
	}
	r.avgDur.Store(old + (int64(d)-old)/8)
}

// classify turns what the handler returned into the outcome to store.
func (r *Runner) classify(e *execution, ctx context.Context, res json.RawMessage, err error) outcome {
	final := e.end()
	o := outcome{e: e, kind: outFinish}
	o.c = Completion{Lease: e.lease, Progress: final}
	cause := context.Cause(e.ctx)
	switch {
	case errors.Is(cause, ErrCanceled):
		o.c.Status = StatusCanceled
		o.c.Error = "canceled"
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrCanceled) {
			o.c.Error = "canceled: " + err.Error()
		}
	case e.lost.Load() || errors.Is(cause, ErrLeaseLost):
		o.kind = outDrop
	case err == nil:
		o.c.Status, o.c.Result = StatusSucceeded, res
		if final != nil {
			o.c.Progress = &Progress{Fraction: 1, Message: final.Message}
		}
	case errors.Is(cause, ErrClosed):
		o.kind = outRelease
	default:
		o.c.Error = err.Error()
		if c := context.Cause(ctx); c != nil && !errors.Is(err, c) {
			o.c.Error += " (" + c.Error() + ")"
		}
		d := r.decideRetry(err, e.attempt, e.job.MaxAttempts)
		if d.retry {
			o.c.Status, o.c.RunAt = StatusPending, time.Now().Add(d.delay)
		} else {
			o.c.Status = StatusFailed
		}
	}
	if o.kind == outFinish {
		// Stored if the job ends, dropped by the repository on a retry.
		o.c.Output = e.takeStaged()
	}
	return o
}

// sleepCtx waits d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
