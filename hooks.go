package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Hooks are callbacks on job lifecycle events in this runner, for logging,
// metrics and adapters. They run synchronously on the runner's goroutines
// (a worker, the completer or the progress writer), so they must be quick
// and must not block; a panic in a hook is recovered and logged. Each gets
// its own copy of the job (Metadata included). Nil fields are skipped.
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

// hookJob calls h with a copy of j, if h is set.
func (r *Runner) hookJob(h func(*Job), name string, j *Job) {
	if h == nil {
		return
	}
	c := *j
	c.Metadata = cloneMetadata(j.Metadata)
	r.callHook(name, func() { h(&c) })
}

// outcomeHooks calls the hook of a stored outcome with the job as it now is.
func (r *Runner) outcomeHooks(o outcome, st Status) {
	h := &r.cfg.hooks
	var f func(*Job)
	var name string
	switch {
	case st == StatusSucceeded:
		f, name = h.OnSucceeded, "succeeded"
	case st == StatusFailed:
		f, name = h.OnFailed, "failed"
	case st == StatusCanceled:
		f, name = h.OnCanceled, "canceled"
	case o.kind == outRelease:
		f, name = h.OnReleased, "released"
	default:
		f, name = h.OnRetrying, "retrying"
	}
	r.logOutcome(o, name)
	if f == nil {
		return
	}
	j := *o.e.job
	j.Metadata = cloneMetadata(j.Metadata)
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
	r.callHook(name, func() { f(&j) })
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
