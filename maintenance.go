package jobs

import (
	"context"
	"time"
)

// rescueLimit is the most expired jobs one rescue call returns to pending.
const rescueLimit = 500

// rescueInterval is how often expired leases are looked for: a quarter of
// the lease, so a dead runner's jobs are pending again within 1.25 leases.
func (r *Runner) rescueInterval() time.Duration { return r.cfg.lease / 4 }

// rescueLoop returns jobs whose lease expired (their runner died or hung) to
// pending, or to failed or canceled as the repository decides.
func (r *Runner) rescueLoop(ctx context.Context) {
	t := time.NewTicker(r.rescueInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.rescue(ctx)
	}
}

func (r *Runner) rescue(ctx context.Context) {
	for ctx.Err() == nil {
		// After the database stopped taking writes, owners get a lease's
		// time to renew before anything is rescued (see outage.go).
		if held, since := r.writes.held(time.Now()); held {
			if !r.rescueHeld.Swap(true) {
				r.cfg.logger.Warn("database writes stalled; rescue of expired leases waits",
					"since", since, "for", r.writes.hold)
			}
			return
		}
		r.rescueHeld.Store(false)
		// No deadline of its own: a rescue cut off after it committed would
		// go unreported, and one that waits out a write outage must show as
		// slow until the outage ends, so that the rescues after it wait
		// (see outage.go). It judges leases by when it was called.
		end := r.writes.begin()
		js, err := r.repo.RescueExpired(ctx, rescueLimit)
		end()
		if err != nil {
			r.cfg.logger.Warn("rescue expired leases", "error", err)
			return
		}
		for _, j := range js {
			r.cfg.logger.Debug("job rescued", "job_id", j.ID, "kind", j.Kind, "status", j.Status, "attempt", j.Attempt)
			r.touch(j.ID)
			if j.Status == StatusPending {
				r.notify()
			}
		}
		if len(js) < rescueLimit {
			return
		}
	}
}

// pruneInterval is how often the pruner runs: a tenth of the retention,
// between a second and an hour.
func (r *Runner) pruneInterval() time.Duration {
	return min(max(r.cfg.retention/10, time.Second), time.Hour)
}

// pruneLoop deletes finished jobs older than the retention, once at start
// and then every prune interval. With retention 0 it does nothing.
func (r *Runner) pruneLoop(ctx context.Context) {
	if r.cfg.retention == 0 {
		return
	}
	t := time.NewTicker(r.pruneInterval())
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, r.pruneInterval())
		n, err := r.repo.Prune(pctx, time.Now().Add(-r.cfg.retention))
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			r.cfg.logger.Warn("prune finished jobs", "error", err)
		case n > 0:
			r.cfg.logger.Debug("pruned finished jobs", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
