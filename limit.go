package jobs

import (
	"time"

	"github.com/jobsmith/jobs/internal/admit"
)

// Limit bounds how many jobs start and run, counted across every process
// sharing the database. A job counts as running from its claim until it
// leaves status running: a job claimed by a process that died keeps its
// slot until the rescuer requeues it (its lease expired, or its owner is
// known dead). A concurrency key is the job's [Job.ConcurrencyKey]
// ([WithConcurrencyKey]); jobs without one are bounded only by Running and
// Rate. Give a kind a limit with [WithLimit], a queue with
// [WithQueueLimit]; a job must fit both its kind's and its queue's limits
// to start. The zero Limit limits nothing.
//
// Every field must be from 0 to math.MaxInt32; Period from 1ms to 24h, and
// only with a rate.
type Limit struct {
	Running int           // jobs running at once; 0: no limit
	PerKey  int           // jobs running at once per concurrency key; 0: no limit
	Rate    int           // starts per Period; 0: no limit
	KeyRate int           // starts per Period per concurrency key; 0: no limit
	Period  time.Duration // the rate window; 0 means 1s
}

// validate returns the ErrInvalidArgument error of an invalid l.
func (l Limit) validate(op, what string) error {
	if msg := admit.Check(admit.Limit(l)); msg != "" {
		return invalid(op, "%s: %s", what, msg)
	}
	return nil
}

// WithLimit bounds the jobs of the handler's kind across every process;
// see [Limit]. Each runner that handles the kind must declare the same
// limit: the limits of the runner that claims apply to its claim. The
// default, and the zero Limit, is no limit. An invalid Limit makes Handle
// panic.
func WithLimit(l Limit) HandleOption { return func(h *handler) { h.limit = l } }

// WithQueueLimit bounds the jobs of the named queue across every process;
// see [Limit]. Every runner that serves the queue must declare the same
// limit: the limits of the runner that claims apply to its claim. Later
// options for the same queue replace earlier ones. The default is no
// limit; the name must be 1 to 128 bytes of valid UTF-8 without NUL and
// the Limit valid, or NewRunner returns [ErrInvalidArgument].
func WithQueueLimit(queue string, l Limit) Option {
	return func(c *runnerConfig) {
		if c.queueLimits == nil {
			c.queueLimits = map[string]Limit{}
		}
		c.queueLimits[queue] = l
	}
}

// validateLimits checks the limits of a ClaimQuery.
func validateLimits(op, what string, m map[string]Limit) error {
	for name, l := range m {
		if err := checkName(op, what, name, false); err != nil {
			return err
		}
		if err := l.validate(op, what+" "+name); err != nil {
			return err
		}
	}
	return nil
}

// claimLimits are the limits a runner declares in each claim.
type claimLimits struct {
	kinds  map[string]Limit // from WithLimit, by kind
	queues map[string]Limit // from WithQueueLimit
	any    bool             // some limit is set
}

// claimLimits gathers the limits of the registered kinds and the queues.
func (r *Runner) claimLimits() claimLimits {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	var c claimLimits
	for kind, h := range r.handlers {
		if h.limit != (Limit{}) {
			if c.kinds == nil {
				c.kinds = map[string]Limit{}
			}
			c.kinds[kind] = h.limit
		}
	}
	for q, l := range r.cfg.queueLimits {
		if l != (Limit{}) {
			if c.queues == nil {
				c.queues = map[string]Limit{}
			}
			c.queues[q] = l
		}
	}
	c.any = c.kinds != nil || c.queues != nil
	return c
}
