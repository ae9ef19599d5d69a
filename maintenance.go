package jobs

import (
	"context"
	"errors"
	"time"
)

// rescueLimit is the most expired jobs one rescue call returns to pending.
const rescueLimit = 500

// rescueInterval is how often expired leases are looked for: a quarter of
// the lease, so a dead runner's jobs are pending again within 1.25 leases.
func (r *Runner) rescueInterval() time.Duration { return r.cfg.lease / 4 }

// deadOwnerInterval is how often the rescuer looks for dead owners when
// the repository can tell them (see ownerLiveness): a killed runner's jobs
// run again elsewhere about this long after the kill (on PostgreSQL the
// repository looks every 100 ms and waits a 50 ms grace), whatever the
// lease.
const deadOwnerInterval = 25 * time.Millisecond

// ownerLiveness is implemented by repositories that can tell a dead runner
// from a live one (jobsbun: a lock file per owner on SQLite, an advisory
// lock per owner on PostgreSQL). Run
// holds its owner with HoldOwner before its first claim and releases it
// when it returns; the rescuer calls RescueDead often, which requeues the
// running jobs of owners whose process is known to be dead. Unlike an
// expired lease, this never takes the jobs of a live but paused process.
// HoldOwner returns an error wrapping errors.ErrUnsupported where the
// repository cannot tell; leases alone then decide, as without it.
type ownerLiveness interface {
	HoldOwner(ctx context.Context, owner string) (release func(), err error)
	RescueDead(ctx context.Context, limit int) ([]*Job, error)
}

// holdOwner takes the runner's owner lock when the repository has owner
// locks. It returns the repository as an ownerLiveness (nil when it has
// none) and the release function (nil when nothing is held).
func (r *Runner) holdOwner(ctx context.Context) (ownerLiveness, func(), error) {
	live, ok := r.repo.(ownerLiveness)
	if !ok {
		return nil, nil, nil
	}
	release, err := live.HoldOwner(ctx, r.cfg.owner)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	}
	return live, release, nil
}

// rescueLoop returns jobs whose lease expired (their runner died or hung)
// to pending, or to failed or canceled as the repository decides; with
// live, it also rescues the jobs of dead owners every deadOwnerInterval.
func (r *Runner) rescueLoop(ctx context.Context, live ownerLiveness) {
	t := time.NewTicker(r.rescueInterval())
	defer t.Stop()
	var dead <-chan time.Time
	if live != nil {
		dt := time.NewTicker(min(deadOwnerInterval, r.rescueInterval()))
		defer dt.Stop()
		dead = dt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.rescue(ctx)
		case <-dead:
			r.rescueDead(ctx, live)
		}
	}
}

// rescueDead requeues the running jobs of dead owners. Errors are logged
// once per run of failures, not every tick.
func (r *Runner) rescueDead(ctx context.Context, live ownerLiveness) {
	for ctx.Err() == nil {
		// Not timed as a write (see outage.go): it is mostly a read, and
		// its judgment does not age while it waits, so a slow call is no
		// sign of an outage that rescues of expired leases must wait out.
		js, err := live.RescueDead(ctx, rescueLimit)
		if err != nil {
			if !r.deadFailing.Swap(true) && ctx.Err() == nil {
				r.cfg.logger.Warn("rescue jobs of dead owners", "error", err)
			}
			return
		}
		r.deadFailing.Store(false)
		r.rescued(js)
		if len(js) < rescueLimit {
			return
		}
	}
}

// rescued tells watchers and the fetcher of rescued jobs.
func (r *Runner) rescued(js []*Job) {
	for _, j := range js {
		r.cfg.logger.Debug("job rescued", "job_id", j.ID, "kind", j.Kind, "status", j.Status, "attempt", j.Attempt)
		r.touch(j.ID)
		if j.Status == StatusPending {
			r.notify()
		}
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
		r.rescued(js)
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
