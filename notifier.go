package jobs

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Event is one hint from a [Notifier] about changes made by any process
// that shares the database. One Event may carry several hints; a notifier
// may as well send each in an Event of its own. The zero Event hints at
// nothing.
type Event struct {
	// Ready: jobs were created or went back to pending (retry, release,
	// rescue), or a paused queue was resumed, so there may be work to
	// claim. The runner wakes its fetcher, at most once every few
	// milliseconds however many hints come.
	Ready bool
	// Canceled: a cancel was requested for these running jobs. The runner
	// stops the handlers of those it runs at once.
	Canceled []uuid.UUID
	// Changed: these jobs changed status or progress. The runner wakes the
	// Watch and Await calls that follow them.
	Changed []uuid.UUID
	// Resync: hints may have been missed (the notifier reconnected, or too
	// many jobs changed at once to name them), so treat it as if everything
	// changed. The runner wakes its fetcher and every watcher and looks for
	// cancel requests at once.
	Resync bool
}

// Notifier delivers hints about changes to the stored jobs, made by this or
// any other process, so that a [Runner] reacts at once instead of at its
// next poll: it claims new jobs, stops the handlers of jobs canceled
// elsewhere, and wakes the watchers of jobs that changed. Pass one to
// [WithNotifier]; jobspg.NewListener is the PostgreSQL implementation
// (LISTEN/NOTIFY).
//
// Hints are an optimisation, never the source of truth: a notifier may
// lose events (while it reconnects, say) and then delivers an [Event] with
// Resync set, and the runner keeps polling at its configured intervals
// either way.
//
// A repository may be a Notifier too: [Runner.Run] then subscribes to it
// besides the one given to WithNotifier. jobsbun.Repository is one, for
// the jobs that jobsbun.RunInTx transactions of this process commit.
type Notifier interface {
	// Subscribe calls fn for every event until the returned func is
	// called. fn runs on the notifier's goroutine, one event at a time; it
	// must return quickly and must not call Subscribe or the returned
	// func. The returned func blocks until fn will not be called again;
	// calling it more than once is harmless. Subscribe is safe for
	// concurrent use and never blocks on the network.
	Subscribe(fn func(Event)) (unsubscribe func())
}

// WithNotifier makes the runner react to the hints of n (see [Notifier]):
// jobs enqueued by other processes start without waiting for the poll,
// cancels requested elsewhere stop their handlers at once, and Watch and
// Await follow jobs of other processes as they change. Polling continues as
// the fallback. The default is no notifier; nil is invalid.
func WithNotifier(n Notifier) Option {
	return func(c *runnerConfig) { c.notifier, c.notifierSet = n, true }
}

// hintSubscription holds the runner's one subscription to its notifier
// while anyone needs it: Run, or a Watch of a job that runs elsewhere.
type hintSubscription struct {
	mu    sync.Mutex
	users int
	stop  func()

	lastWake atomic.Int64 // UnixNano of the last wake by a hint of new jobs
	pending  atomic.Bool  // a delayed wake is scheduled
}

// readyCooldown is the least time between two wake-ups of the fetcher by
// hints of new jobs. Every insert in any process sends such a hint to every
// runner, and only one of them gets each job: without a bound, a stream of
// single enqueues would make every runner claim once per enqueue. A hint
// inside the cooldown is not dropped but delayed to its end, so the last
// one always wakes the fetcher. Local enqueues wake it at once regardless.
const readyCooldown = 5 * time.Millisecond

// holdHints makes sure the runner receives its notifier's hints until the
// returned func is called. Without a notifier it does nothing.
func (r *Runner) holdHints() (release func()) {
	n := r.cfg.notifier
	if n == nil {
		return func() {}
	}
	h := &r.hints
	h.mu.Lock()
	if h.users++; h.users == 1 {
		h.stop = n.Subscribe(r.onHint)
	}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.users--; h.users == 0 {
				h.stop()
				h.stop = nil
			}
		})
	}
}

// onHint reacts to one notifier event, to each of its hints. It runs on the
// notifier's goroutine and never blocks.
func (r *Runner) onHint(ev Event) {
	for _, id := range ev.Canceled {
		if e := r.exec(id); e != nil {
			e.cancel(ErrCanceled)
		}
	}
	if ev.Resync {
		// As if everything changed: this covers Ready and Changed too.
		r.notify()
		r.touchAll()
		r.cancelPollNow()
		return
	}
	// A job that ended elsewhere may have freed a slot of a limit.
	if ev.Ready || (len(ev.Changed) > 0 && r.limits.any) {
		r.wakeForHint()
	}
	for _, id := range ev.Changed {
		r.touch(id)
	}
}

// wakeForHint wakes the fetcher for a hint of new jobs, at most once per
// readyCooldown; a hint within the cooldown schedules one wake at its end.
func (r *Runner) wakeForHint() {
	h := &r.hints
	if h.pending.Load() {
		return // the scheduled wake will come
	}
	now := time.Now().UnixNano()
	wait := h.lastWake.Load() + int64(readyCooldown) - now
	if wait <= 0 {
		h.lastWake.Store(now)
		r.notify()
		return
	}
	if h.pending.CompareAndSwap(false, true) {
		time.AfterFunc(time.Duration(wait), func() {
			h.lastWake.Store(time.Now().UnixNano())
			h.pending.Store(false)
			r.notify()
		})
	}
}

// touchAll wakes every watcher.
func (r *Runner) touchAll() {
	if r.nwatch.Load() == 0 {
		return
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	for _, w := range r.watchers {
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// cancelPollNow asks the cancel poll loop to look for cancel requests at
// once, without blocking.
func (r *Runner) cancelPollNow() {
	select {
	case r.pollCancels <- struct{}{}:
	default:
	}
}
