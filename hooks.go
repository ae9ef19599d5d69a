package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
)

// Hooks are callbacks on job lifecycle events in this runner, for logging,
// metrics, tracing and adapters. They run synchronously on the runner's
// goroutines (the caller's, a worker, the completer or the progress
// writer), so they must be quick and must not block, and they may run
// concurrently with each other; a panic in a hook is recovered and logged.
// Each gets its own copy of the job (Metadata included), except OnEnqueue,
// which gets the job about to be stored. Nil fields are skipped. Several
// [WithHooks] options add up.
type Hooks struct {
	// OnStarted runs on the worker just before the handler is called.
	OnStarted func(*Job)
	// OnSucceeded, OnFailed and OnCanceled run after the outcome is stored.
	OnSucceeded func(*Job)
	OnFailed    func(*Job)
	OnCanceled  func(*Job)
	// OnRetrying runs after a failed attempt is stored for a retry; the job
	// is pending with the error and the RunAt of the next attempt.
	OnRetrying func(*Job)
	// OnReleased runs after a job was handed back to pending, its attempt
	// not counted: at shutdown, or unstarted when the workers that would
	// run it are all busy with long jobs.
	OnReleased func(*Job)
	// OnProgress runs with the latest progress of a job each time it is
	// written to the repository (at most once per progress interval).
	OnProgress func(Snapshot)

	// OnEnqueue runs in [Runner.Enqueue], [Runner.EnqueueTx] and
	// [Runner.EnqueueMany], on the caller's goroutine with the caller's
	// ctx, for each job that passed the runner's checks, just before it is
	// written. It may add entries to j.Metadata (allocating the map when it
	// is nil), such as the trace context or a request ID that ctx carries;
	// they count toward the limits of [WithMetadata], and an entry the
	// caller set is best left alone. It must not change anything else of j.
	// The func it returns, if not nil, runs once the write is over, on the
	// same goroutine, with the enqueue's error: nil when the job is stored
	// (j then has its ID, or is the existing job with Duplicate set; with
	// EnqueueTx, written in the transaction, which may still roll back).
	// Jobs that schedules create do not pass through it.
	OnEnqueue func(ctx context.Context, j *Job) (done func(err error))
	// OnAttempt runs on the worker just before the handler is called
	// (after OnStarted), with the ctx the handler would get. The ctx it
	// returns is the handler's instead: it must be ctx or derived from it,
	// to carry a span, a logger or a value for the handler; nil keeps ctx.
	// The func it returns, if not nil, runs exactly once when the attempt's
	// end is known, with a copy of the job as it then is: after its
	// outcome is stored, on the completer's goroutine (the job as the
	// outcome hooks above see it), or when the outcome could not be
	// stored. outcome is "succeeded", "failed", "canceled", "retrying" (the
	// attempt failed, the job runs again), "released" (back to pending, the
	// attempt not counted: shutdown), or "lost" (the lease was lost, or
	// storing failed: the repository has the job's state). A handler that
	// never returns never ends its attempt.
	OnAttempt func(ctx context.Context, j *Job) (context.Context, func(j *Job, outcome string))
}

// callHook runs f, recovering and logging a panic.
func (r *Runner) callHook(name string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			r.cfg.logger.Error("hook panicked", "hook", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// copyJob returns a copy of j that shares no map with it.
func copyJob(j *Job) *Job {
	c := *j
	c.Metadata = cloneMetadata(j.Metadata)
	return &c
}

// hookJob calls the hook that pick selects from each Hooks with a copy of j.
func (r *Runner) hookJob(pick func(*Hooks) func(*Job), name string, j *Job) {
	for i := range r.cfg.hooks {
		if h := pick(&r.cfg.hooks[i]); h != nil {
			c := copyJob(j)
			r.callHook(name, func() { h(c) })
		}
	}
}

// enqueueHooks runs the OnEnqueue hooks for j and returns what to call
// with the outcome of its write, or nil.
func (r *Runner) enqueueHooks(ctx context.Context, j *Job) func(error) {
	var dones []func(error)
	for i := range r.cfg.hooks {
		h := r.cfg.hooks[i].OnEnqueue
		if h == nil {
			continue
		}
		var done func(error)
		r.callHook("enqueue", func() { done = h(ctx, j) })
		if done != nil {
			dones = append(dones, done)
		}
	}
	if len(dones) == 0 {
		return nil
	}
	return func(err error) {
		for _, d := range slices.Backward(dones) {
			r.callHook("enqueue done", func() { d(err) })
		}
	}
}

// attemptHooks runs the OnAttempt hooks for e and returns the handler's
// context; it sets e.attemptEnd to what ends the attempt.
func (r *Runner) attemptHooks(ctx context.Context, e *execution) context.Context {
	var ends []func(*Job, string)
	for i := range r.cfg.hooks {
		h := r.cfg.hooks[i].OnAttempt
		if h == nil {
			continue
		}
		c := copyJob(e.job)
		var (
			hctx context.Context
			end  func(*Job, string)
		)
		r.callHook("attempt", func() { hctx, end = h(ctx, c) })
		if hctx != nil {
			ctx = hctx
		}
		if end != nil {
			ends = append(ends, end)
		}
	}
	if len(ends) > 0 {
		e.attemptEnd = func(j *Job, outcome string) {
			for _, end := range slices.Backward(ends) {
				c := copyJob(j)
				r.callHook("attempt end", func() { end(c, outcome) })
			}
		}
	}
	return ctx
}

// endAttempt calls the end of e's OnAttempt hooks, once, with j.
func (r *Runner) endAttempt(e *execution, j *Job, outcome string) {
	if f := e.attemptEnd; f != nil {
		e.attemptEnd = nil
		f(j, outcome)
	}
}

// outcomeHooks calls the hooks of a stored outcome with the job as it now is.
func (r *Runner) outcomeHooks(o outcome, st Status) {
	var (
		pick func(*Hooks) func(*Job)
		name string
	)
	switch {
	case st == StatusSucceeded:
		pick, name = func(h *Hooks) func(*Job) { return h.OnSucceeded }, "succeeded"
	case st == StatusFailed:
		pick, name = func(h *Hooks) func(*Job) { return h.OnFailed }, "failed"
	case st == StatusCanceled:
		pick, name = func(h *Hooks) func(*Job) { return h.OnCanceled }, "canceled"
	case o.kind == outRelease:
		pick, name = func(h *Hooks) func(*Job) { return h.OnReleased }, "released"
	default:
		pick, name = func(h *Hooks) func(*Job) { return h.OnRetrying }, "retrying"
	}
	r.logOutcome(o, name)
	want := o.e.attemptEnd != nil
	for i := range r.cfg.hooks {
		want = want || pick(&r.cfg.hooks[i]) != nil
	}
	if !want {
		return
	}
	j := *o.e.job
	j.Status = st
	if o.kind == outFinish {
		if o.c.Progress != nil {
			j.Progress = *o.c.Progress
		}
		if o.c.Error != "" {
			j.Error = o.c.Error
		}
		switch st {
		case StatusSucceeded:
			j.Result = o.c.Result
		case StatusPending:
			j.RunAt = o.c.RunAt
		}
	} else {
		j.Attempt--
	}
	if st != StatusPending {
		j.LeaseOwner, j.LeaseToken = "", ""
	}
	r.hookJob(pick, name, &j)
	r.endAttempt(o.e, &j, name)
}

// logOutcome logs a stored outcome: debug for the lifecycle, warn for
// retries and failures.
func (r *Runner) logOutcome(o outcome, event string) {
	level := slog.LevelDebug
	if event == "retrying" || event == "failed" {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !r.cfg.logger.Enabled(ctx, level) {
		return
	}
	r.cfg.logger.Log(ctx, level, "job "+event, "job_id", o.e.lease.JobID, "kind", o.e.job.Kind,
		"attempt", o.e.attempt, "error", o.c.Error)
}
