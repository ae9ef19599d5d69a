package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// HandleOption configures the handler of one kind; pass it to
// [Runner.Handle] or [Handle].
type HandleOption func(*handler)

// WithKindTimeout limits each attempt of the kind's jobs to d unless the job
// has its own timeout ([WithTimeout]). The default, and zero, mean no limit;
// a negative d makes Handle panic; there is no upper limit.
func WithKindTimeout(d time.Duration) HandleOption { return func(h *handler) { h.timeout = d } }

type handler struct {
	fn      func(ctx context.Context, job *Job, progress Reporter) (json.RawMessage, error)
	timeout time.Duration
	limit   Limit // see limit.go
}

// Runner runs the handlers of the jobs stored in a [JobRepository]: it
// claims jobs of its kinds in batches, runs up to its concurrency at once,
// stores their progress and outcomes, retries failures with backoff, renews
// leases, rescues the jobs of dead runners and prunes old ones.
//
// Register handlers with [Runner.Handle] or [Handle] before calling
// [Runner.Run]. All other methods are safe for concurrent use and work
// whether or not Run is running; a Runner runs once.
type Runner struct {
	repo JobRepository
	cfg  runnerConfig

	hmu       sync.RWMutex // guards handlers
	handlers  map[string]*handler
	schedules map[string]*scheduled // guarded by hmu; see schedule.go
	started   atomic.Bool

	batch     enqueueBatcher
	saves     saveBatcher   // checkpoints; see checkpoint.go
	wake      chan struct{} // a local enqueue or a retry is ready
	seq       atomic.Uint64 // snapshot sequence numbers
	avgDur    atomic.Int64  // moving average of handler run time, ns; -1 unknown
	lastFreed atomic.Int64  // unix ns when a worker last finished a job
	// depsUsed is set once this runner created a job with dependencies
	// (or retried a batch): its finishes then wake the workers, since a
	// job that waited for one may be pending now (see Runner.finish).
	depsUsed atomic.Bool

	wakes  wakeSchedule // delayed wake-ups of the fetcher; see wake.go
	pauses localPauses  // queues paused by this runner; see pause.go

	limits claimLimits // set by Run; see limit.go

	emu   sync.Mutex // guards execs
	execs map[uuid.UUID]*execution

	wmu      sync.Mutex // guards watchers
	watchers map[uuid.UUID]*watchEntry
	nwatch   atomic.Int32

	// Run state.
	work     chan *execution // claimed jobs for the workers
	busy     atomic.Int64    // claimed jobs whose handler has not ended
	freed    chan struct{}   // a worker slot was freed
	stopping atomic.Bool     // Run's ctx is done: start nothing new
	comp     chan outcome    // outcomes for the completer
	compGone chan struct{}   // closed when the completer has stopped

	hints       hintSubscription // to cfg.notifier; see notifier.go
	pollCancels chan struct{}    // look for cancel requests now
	writes      *writeWatch      // times this runner's writes; see outage.go
	rescueHeld  atomic.Bool      // the rescuer is waiting out a write outage
	deadFailing atomic.Bool      // the last RescueDead failed (logged once)
}

// NewRunner returns a Runner over repo, configured by opts. It returns
// [ErrInvalidArgument] when repo is nil or an option is invalid.
func NewRunner(repo JobRepository, opts ...Option) (*Runner, error) {
	if repo == nil {
		return nil, invalid("new runner", "repository is nil")
	}
	cfg, err := newRunnerConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		repo:     repo,
		cfg:      cfg,
		handlers: map[string]*handler{},
		wake:     make(chan struct{}, 1),
		execs:    map[uuid.UUID]*execution{},
		watchers: map[uuid.UUID]*watchEntry{},
		freed:    make(chan struct{}, 1),
		compGone: make(chan struct{}),

		pollCancels: make(chan struct{}, 1),
		writes:      newWriteWatch(cfg.lease),
	}
	r.avgDur.Store(-1)
	return r, nil
}

// Owner returns the name the runner uses in the leases it takes.
func (r *Runner) Owner() string { return r.cfg.owner }

// Handle registers h for jobs of the given kind. The runner claims only the
// kinds it has handlers for. Handle panics, as a programming error, when kind
// is not a valid name, h is nil, kind already has a handler, an option is
// invalid, or Run has started.
//
// h handles one attempt of a job. The JSON it returns is stored as the job's
// Result when the attempt succeeds; an error fails the attempt (see
// [Permanent] and [RetryAfter]). Its ctx is cancelled when the job is
// canceled, times out, loses its lease or the runner shuts down, and
// [context.Cause] tells which ([ErrCanceled], [ErrTimeout], [ErrLeaseLost],
// or [ErrClosed]: the runner is closing). progress reports how far the attempt has come.
func (r *Runner) Handle(kind string, h func(ctx context.Context, job *Job, progress Reporter) (json.RawMessage, error), opts ...HandleOption) {
	if err := checkName("handle", "kind", kind, false); err != nil {
		panic(err.Error())
	}
	if h == nil {
		panic(fmt.Sprintf("jobs: handle %q: nil handler", kind))
	}
	hd := &handler{fn: h}
	for _, o := range opts {
		if o != nil {
			o(hd)
		}
	}
	if hd.timeout < 0 {
		panic(fmt.Sprintf("jobs: handle %q: negative timeout", kind))
	}
	if err := hd.limit.validate("handle", "limit of kind "+kind); err != nil {
		panic(err.Error())
	}
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if r.started.Load() {
		panic(fmt.Sprintf("jobs: handle %q: the runner has started", kind))
	}
	if r.handlers[kind] != nil {
		panic(fmt.Sprintf("jobs: handle %q: kind already has a handler", kind))
	}
	r.handlers[kind] = hd
}

// Handle registers a typed handler for kind on r: the payload is decoded
// into T and the returned R is encoded as the result. A payload that does not
// decode into T fails the attempt permanently with an [ErrInvalidArgument]
// error naming the kind. It panics like [Runner.Handle].
func Handle[T, R any](r *Runner, kind string, h func(ctx context.Context, job *Job, in T, progress Reporter) (R, error), opts ...HandleOption) {
	if h == nil {
		panic(fmt.Sprintf("jobs: handle %q: nil handler", kind))
	}
	r.Handle(kind, func(ctx context.Context, job *Job, p Reporter) (json.RawMessage, error) {
		var in T
		if err := json.Unmarshal(job.Payload, &in); err != nil {
			return nil, Permanent(&Error{Code: ErrInvalidArgument, Op: "decode payload", JobID: job.ID,
				Msg: fmt.Sprintf("payload of kind %q does not decode into %T", kind, in), Err: err})
		}
		out, err := h(ctx, job, in, p)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, Permanent(&Error{Code: ErrInvalidArgument, Op: "encode result", JobID: job.ID,
				Msg: fmt.Sprintf("result of kind %q cannot be encoded as JSON", kind), Err: err})
		}
		return b, nil
	}, opts...)
}

// handler returns the handler of kind, or nil.
func (r *Runner) handler(kind string) *handler {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	return r.handlers[kind]
}

// hasHandlers reports whether any kind has a handler.
func (r *Runner) hasHandlers() bool {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	return len(r.handlers) > 0
}

// kinds returns the registered kinds.
func (r *Runner) kinds() []string {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	ks := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		ks = append(ks, k)
	}
	return ks
}

// Get returns the job with the given ID as stored, or [ErrNotFound].
func (r *Runner) Get(ctx context.Context, id uuid.UUID) (*Job, error) { return r.repo.Get(ctx, id) }

// List returns one page of jobs matching q, newest first; see
// [JobRepository.List].
func (r *Runner) List(ctx context.Context, q ListQuery) (*Page, error) { return r.repo.List(ctx, q) }

// Stats counts the stored jobs by status, kind and queue and lists the
// paused queues; see [JobRepository.Stats].
func (r *Runner) Stats(ctx context.Context) (*Stats, error) { return r.repo.Stats(ctx) }

// exec returns the local execution of job id, or nil.
func (r *Runner) exec(id uuid.UUID) *execution {
	r.emu.Lock()
	defer r.emu.Unlock()
	return r.execs[id]
}

// execList returns the local executions.
func (r *Runner) execList() []*execution {
	r.emu.Lock()
	defer r.emu.Unlock()
	es := make([]*execution, 0, len(r.execs))
	for _, e := range r.execs {
		es = append(es, e)
	}
	return es
}

// Run runs the runner until ctx is done, then shuts down gracefully, and
// returns once its work is stored. It claims jobs of the registered kinds
// (none at all without handlers), runs up to the concurrency at once, and
// keeps leases, cancel requests, rescues and pruning going.
//
// At shutdown Run stops claiming, hands claimed jobs that have not started
// back to pending, and waits up to the grace period for running handlers.
// Then it cancels the rest with cause [ErrClosed] and releases their jobs
// to pending without counting the attempt. Handlers that still do not return
// within the stop timeout are left behind: their leases expire and another
// runner takes the jobs over; Run then returns an [ErrClosed] error, and
// the goroutines of those handlers end only when the handlers return (their
// outcomes are not stored). [WithShutdown] sets both durations. Outcomes are
// stored with a context detached from ctx, so none is lost to the shutdown.
//
// Run returns nil after a clean shutdown, an [ErrConflict] error when called
// a second time, an [ErrClosed] error when the repository was closed or
// handlers were left behind, and the repository's error when it keeps owner
// locks (jobsbun on SQLite) and cannot take this runner's.
func (r *Runner) Run(ctx context.Context) error {
	r.hmu.Lock()
	already := r.started.Swap(true)
	r.hmu.Unlock()
	if already {
		return newError(ErrConflict, "run", uuid.Nil, "the runner was already started")
	}
	kinds := r.kinds()
	r.limits = r.claimLimits()
	log := r.cfg.logger
	log.Info("runner started", "owner", r.cfg.owner, "kinds", kinds, "concurrency", r.cfg.concurrency)
	defer r.holdHints()()
	if n, ok := r.repo.(Notifier); ok && n != r.cfg.notifier {
		// The repository tells of jobs committed in this process by a
		// transaction the runner did not see (jobsbun.RunInTx).
		defer n.Subscribe(func(Event) { r.notify() })()
	}

	// Handlers and bookkeeping outlive ctx (they get its values, not its
	// cancellation); the loops stop when the drain is over.
	base := context.WithoutCancel(ctx)
	loopCtx, stopLoops := context.WithCancel(base)
	defer stopLoops()
	r.work = make(chan *execution, max(r.cfg.concurrency, rules.MaxClaimLimit))
	// Room for every claimed job's outcome: a slow write never stalls the
	// workers, and the fetcher still stops claiming when outcomes pile up.
	r.comp = make(chan outcome, cap(r.work))
	// Held before the first claim: from now on a rescuer that finds this
	// owner's lock free knows the process is dead (see maintenance.go). A
	// runner that cannot hold it does not run: its jobs could be taken
	// for a dead process's.
	live, releaseOwner, err := r.holdOwner(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil // stopped before it started: nothing claimed, nothing to drain
	case err != nil:
		log.Error("runner not started: owner lock", "owner", r.cfg.owner, "error", err)
		return err
	}
	// The runner's own loops cannot fail: each logs its errors, retries,
	// and ends when loopCtx does.
	var loops sync.WaitGroup
	loops.Go(func() { r.heartbeatLoop(loopCtx) })
	loops.Go(func() { r.progressLoop(loopCtx) })
	loops.Go(func() { r.cancelPollLoop(loopCtx) })
	loops.Go(func() { r.rescueLoop(loopCtx, live) })
	loops.Go(func() { r.pruneLoop(loopCtx) })
	loops.Go(func() { r.giveBackLoop(loopCtx) })
	loops.Go(func() { r.scheduleLoop(ctx) }) // no new tick once shutdown begins
	stopComp := make(chan struct{})
	go r.completer(base, stopComp)
	var workers sync.WaitGroup
	for range r.cfg.concurrency {
		workers.Go(r.worker)
	}

	var runErr error
	if len(kinds) > 0 {
		runErr = r.fetch(ctx, base, kinds)
	} else {
		<-ctx.Done()
	}

	// Shutdown: nothing new starts; claimed jobs still queued are released
	// by the workers.
	r.stopping.Store(true)
	close(r.work)
	log.Info("runner stopping", "owner", r.cfg.owner, "running", r.busy.Load())
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	if !waitFor(done, r.cfg.grace) {
		for _, e := range r.execList() {
			e.cancel(ErrClosed)
		}
		if !waitFor(done, r.cfg.stopTimeout) {
			n := r.busy.Load()
			runErr = errors.Join(runErr, newError(ErrClosed, "run", uuid.Nil, "%d handlers did not return after cancellation", n))
			// Their leases are no longer renewed: from now on the
			// repository, not this process, knows their jobs' state.
			for _, e := range r.execList() {
				e.lost.Store(true)
				r.touch(e.lease.JobID)
			}
			// The owner lock stays held while the process lives: its
			// handlers may still act, so their jobs wait for their leases.
			releaseOwner = nil
		}
	}
	close(stopComp)
	<-r.compGone
	stopLoops()
	r.stopWakes()
	loops.Wait()
	if releaseOwner != nil {
		releaseOwner()
	}
	log.Info("runner stopped", "owner", r.cfg.owner)
	return runErr
}

// waitFor waits up to d for done and reports whether it was closed.
func waitFor(done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
