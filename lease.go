package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// heartbeatInterval is how often leases are renewed: a third of the lease,
// so that two missed beats still leave time to stop the handler.
func (r *Runner) heartbeatInterval() time.Duration { return r.cfg.lease / 3 }

// heartbeatLoop renews the leases of all local jobs with one repository call
// per tick, and cancels the handlers whose lease could not be renewed in time.
// The renewal runs beside the loop with no deadline of its own: a call cut
// off by a deadline costs a PostgreSQL connection and tells nothing, while
// one that waits out a write outage lands as soon as the database takes
// writes again. The loop starts no second renewal while one is under way,
// and checks every tick whether leases are running out, whatever the
// renewal is doing.
func (r *Runner) heartbeatLoop(ctx context.Context) {
	every := r.heartbeatInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	beating := false
	beat := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			if beating {
				<-beat
			}
			return
		case <-beat:
			beating = false
			r.giveUpExpiring(every)
			continue
		case <-t.C:
		}
		if !beating {
			beating = true
			go func() {
				r.heartbeat(ctx, every)
				beat <- struct{}{}
			}()
		}
		r.giveUpExpiring(every)
	}
}

// heartbeat renews, in one call, the leases that no progress write renewed
// in the last half interval.
func (r *Runner) heartbeat(ctx context.Context, every time.Duration) {
	start := time.Now()
	var (
		leases []Lease
		execs  []*execution
	)
	for _, e := range r.execList() {
		if e.lost.Load() || start.Sub(time.Unix(0, e.renewed.Load())) < every/2 {
			continue
		}
		leases = append(leases, e.lease)
		execs = append(execs, e)
	}
	if len(leases) == 0 {
		return
	}
	end := r.writes.begin()
	err := r.repo.Heartbeat(ctx, r.cfg.lease, leases...)
	end()
	if ctx.Err() != nil {
		return // shutdown: the leases are released or left to expire
	}
	r.settleRenewals("renew leases", execs, err, time.Now(), nil)
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
// leases of execs (a heartbeat or a progress write) and returned at done: a
// job whose lease was lost is stopped, a job written counts as renewed at
// done, and a job whose write failed otherwise keeps its lease until it runs
// out and is handed to retry, when not nil. Repositories grant the lease
// from when the write lands, after any wait for the database, which is the
// end of the call but for the time the reply took.
func (r *Runner) settleRenewals(msg string, execs []*execution, err error, done time.Time, retry func(*execution)) {
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
			e.renewed.Store(done.UnixNano())
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
}

// cancelPollLoop picks up cancel requests made by other processes for the
// jobs running here, with one cheap query per interval while any run.
func (r *Runner) cancelPollLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.cancelPoll)
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

// splitErrors sorts the error of a batch call into the errors of single
// jobs (an [*Error] with a JobID) and the rest, joined.
func splitErrors(err error) (map[uuid.UUID]error, error) {
	if err == nil {
		return nil, nil
	}
	perJob := map[uuid.UUID]error{}
	var other []error
	for _, e := range flatten(err, nil) {
		if je, ok := errors.AsType[*Error](e); ok && je.JobID != uuid.Nil {
			perJob[je.JobID] = e
			continue
		}
		other = append(other, e)
	}
	return perJob, errors.Join(other...)
}

// flatten appends the errors joined in err (at any depth of errors.Join)
// to out.
func flatten(err error, out []error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = flatten(e, out)
		}
		return out
	}
	return append(out, err)
}
