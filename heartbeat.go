package jobs

import (
	"context"
	"errors"
	"time"
)

// heartbeatInterval is how often leases are renewed: a third of the lease,
// so that two missed beats still leave time to stop the handler.
func (r *Runner) heartbeatInterval() time.Duration { return r.cfg.lease / 3 }

// heartbeatLoop renews the leases of all local jobs with one repository call
// per tick, and then cancels the handlers whose lease could not be renewed
// in time. The leases to renew are picked before any is given up, so that a
// process that was paused past its leases still tries them and learns from
// the repository that they were lost.
func (r *Runner) heartbeatLoop(ctx context.Context) {
	every := r.heartbeatInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if leases, execs := r.dueLeases(every); len(leases) > 0 {
			hctx, cancel := context.WithTimeout(ctx, every)
			r.heartbeat(hctx, leases, execs)
			cancel()
		}
		r.giveUpExpiring(every)
	}
}

// dueLeases returns the leases that no renewal in the last half interval
// renewed (a progress write renews too), and their executions.
func (r *Runner) dueLeases(every time.Duration) (leases []Lease, execs []*execution) {
	now := time.Now()
	for _, e := range r.execList() {
		if e.lost.Load() || now.Sub(time.Unix(0, e.renewed.Load())) < every/2 {
			continue
		}
		leases = append(leases, e.lease)
		execs = append(execs, e)
	}
	return leases, execs
}

// heartbeat renews the leases of execs in one call.
func (r *Runner) heartbeat(ctx context.Context, leases []Lease, execs []*execution) {
	start := time.Now()
	end := r.writes.begin()
	err := r.repo.Heartbeat(ctx, r.cfg.lease, leases...)
	end()
	r.settleRenewals("renew leases", execs, err, start, nil)
}

// giveUpExpiring stops the handlers whose lease the next tick might not
// renew in time, well before it expires and another runner may claim the
// job: less than one and a half intervals left means two beats in a row
// have failed or are still waiting. (Exactly one interval would tie with
// the expiry when ticks are on time.) An attempt whose handler has returned
// keeps its lease: there is no handler left to stop, and its outcome,
// waiting to be stored, must not be handed to a rescuer (see outage.go);
// its leases are renewed until the outcome is stored.
func (r *Runner) giveUpExpiring(every time.Duration) {
	now := time.Now()
	for _, e := range r.execList() {
		left := time.Unix(0, e.renewed.Load()).Add(r.cfg.lease).Sub(now)
		if !e.lost.Load() && left < every+every/2 && !e.hasEnded() {
			r.cfg.logger.Error("lease not renewed in time", "job_id", e.lease.JobID, "kind", e.job.Kind)
			r.leaseLost(e)
		}
	}
}

// settleRenewals applies the result err of a batch write that renews the
// leases of execs (a heartbeat or a progress write) begun at start: a job
// whose lease was lost is stopped, a job written counts as renewed at
// start, and a job whose write failed otherwise keeps its lease until it
// runs out and is handed to retry, when not nil. The lease was granted when
// the write landed, somewhere between start and the reply; start is the
// safe guess: the reply may come long after the write landed (the process
// was paused meanwhile), and the runner must never think a lease lasts
// longer than it does.
func (r *Runner) settleRenewals(msg string, execs []*execution, err error, start time.Time, retry func(*execution)) {
	perJob, other := splitErrors(err)
	if other != nil {
		r.cfg.logger.Warn(msg, "error", other, "jobs", len(execs))
	}
	for _, e := range execs {
		switch jerr := perJob[e.lease.JobID]; {
		case errors.Is(jerr, ErrLeaseLost), errors.Is(jerr, ErrNotFound):
			r.leaseLost(e)
		case jerr != nil || other != nil:
			if retry != nil {
				retry(e)
			}
		default:
			e.renewed.Store(start.UnixNano())
		}
	}
}

// leaseLost stops a job whose lease this runner no longer holds: its handler
// is cancelled with [ErrLeaseLost] and nothing more is written for it.
func (r *Runner) leaseLost(e *execution) {
	if e.lost.Swap(true) {
		return
	}
	e.cancel(ErrLeaseLost)
	r.touch(e.lease.JobID) // watchers and output followers read the repository from now on
}
