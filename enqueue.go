package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
)

// EnqueueOption sets a field of one job created by [Runner.Enqueue] and its
// twins. Options are checked when the job is created; an invalid value
// returns [ErrInvalidArgument] and nothing is written.
type EnqueueOption func(*enqueueConfig)

type enqueueConfig struct {
	job            *Job
	runAt          time.Time
	maxAttemptsSet bool
}

// InQueue puts the job into the named queue. The default, and the empty
// name, is the queue "default"; a name must be at most 128
// bytes of valid UTF-8 without NUL.
func InQueue(name string) EnqueueOption { return func(c *enqueueConfig) { c.job.Queue = name } }

// WithPriority sets the job's priority: within a queue, higher runs first.
// The default is 0; n must be in the int32 range (math.MinInt32 to
// math.MaxInt32), negative values included; others are refused with
// [ErrInvalidArgument].
func WithPriority(n int) EnqueueOption { return func(c *enqueueConfig) { c.job.Priority = n } }

// WithRunAt makes the job wait until t before it may start; pass
// time.Now().Add(d) to delay it by d. The default, the zero time and a time
// in the past mean at once; a time after the year 9999 (UTC) is refused with
// [ErrInvalidArgument], because SQLite could not order it.
func WithRunAt(t time.Time) EnqueueOption { return func(c *enqueueConfig) { c.runAt = t } }

// WithMaxAttempts sets how many attempts the job may have. The default is
// 3; n must be from 1 to math.MaxInt32.
func WithMaxAttempts(n int) EnqueueOption {
	return func(c *enqueueConfig) { c.job.MaxAttempts, c.maxAttemptsSet = n, true }
}

// WithTimeout limits each attempt of the job to d, after which the handler's
// context is cancelled with cause [ErrTimeout] and the attempt fails. The
// default, and zero, mean no limit beyond the kind's (see
// [WithKindTimeout]); negative is invalid; there is no upper limit.
func WithTimeout(d time.Duration) EnqueueOption {
	return func(c *enqueueConfig) { c.job.Timeout = d }
}

// WithUniqueKey makes the enqueue idempotent: while a job with the same key
// exists, enqueueing again returns that job with Job.Duplicate set and
// creates nothing. The default, and the empty key, is none; a key must be at
// most 256 bytes of valid UTF-8 without NUL.
func WithUniqueKey(key string) EnqueueOption {
	return func(c *enqueueConfig) { c.job.UniqueKey = key }
}

// WithConcurrencyKey sets the job's concurrency key: the user, tenant or
// account it works for. Limits per key ([Limit].PerKey and KeyRate) count
// the jobs of each key apart, and jobs of equal priority are claimed with
// their keys taking turns, so a key with thousands of jobs queued does not
// starve a key with one (jobs without a key take their turns as one key).
// The default, and the empty key, is none; a key must be at most 128 bytes
// of valid UTF-8 without NUL.
func WithConcurrencyKey(key string) EnqueueOption {
	return func(c *enqueueConfig) { c.job.ConcurrencyKey = key }
}

// After makes the job run after the jobs with the given IDs, created
// before it: it is waiting until they have all ended, then pending, and it
// is canceled when one of them fails or is canceled (unless
// [WithRunAnyway]). See [Job.DependsOn]. A handler reads its dependencies'
// results with [Runner.Get]. To create a job and its dependencies in one
// call, use [EnqueueRequest].After.
func After(ids ...uuid.UUID) EnqueueOption {
	return func(c *enqueueConfig) { c.job.DependsOn = append(c.job.DependsOn, ids...) }
}

// WithRunAnyway makes a job with dependencies run once they have all
// ended, whatever their outcome (see [Job.RunAnyway]).
func WithRunAnyway() EnqueueOption { return func(c *enqueueConfig) { c.job.RunAnyway = true } }

// EnqueueRequest is one job for [Runner.EnqueueMany].
type EnqueueRequest struct {
	Kind    string
	Payload any // encoded as for [Runner.Enqueue]
	Options []EnqueueOption
	// After lists requests of the same call that this job runs after, by
	// their index in it; each must come before this one, so a graph
	// created in one call has no cycle (see [After]).
	After []int
}

// Enqueue creates a pending job of the given kind and returns it as stored.
// The payload is encoded with encoding/json, except a [json.RawMessage] or
// []byte, which must already be JSON and is stored as is. A job that can
// start at once wakes this runner's idle workers immediately.
//
// It returns [ErrUnknownKind] when the runner has handlers but none for
// kind (a runner without handlers enqueues any kind; see
// [WithAllowUnknownKinds]), [ErrInvalidArgument] or [ErrTooLarge] for bad
// input, and the repository's errors. With [WithUniqueKey], a repeat returns
// the existing job with Duplicate set and a nil error. It is safe for
// concurrent use and needs no running Run.
//
// Concurrent calls share repository writes: while one write is in flight,
// the calls that arrive meanwhile are written together in the next one, so
// many callers enqueue faster than one. A job that another caller's bad
// input would make the shared write refuse is written on its own. When ctx
// ends before the job's write has started, Enqueue returns ctx's error and
// writes nothing; once the write has started, Enqueue waits for it and
// reports its outcome.
//
// A nil error means the job is stored; an error means it is not, except
// [ErrOutcomeUnknown], returned when the write failed in a way that the
// database cannot confirm either way: the job may or may not exist, and
// only a retry with the same [WithUniqueKey] is safe. Every error is an
// [*Error]; one caused by ctx ending has [ErrUnavailable] and matches
// ctx.Err() with [errors.Is].
func (r *Runner) Enqueue(ctx context.Context, kind string, payload any, opts ...EnqueueOption) (*Job, error) {
	j, err := r.newJob(kind, payload, opts)
	if err != nil {
		return nil, err
	}
	done := r.enqueueHooks(ctx, j)
	err = r.create(ctx, j)
	if done != nil {
		done(err)
	}
	if err != nil {
		return nil, err
	}
	r.enqueued(j)
	return j, nil
}

// EnqueueTx is [Runner.Enqueue] inside the caller's own database
// transaction: the job exists if, and only if, tx commits. tx is the
// repository's transaction type (for jobsbun, a bun.Tx); any other value is
// [ErrInvalidArgument] and writes nothing. The caller owns the commit: after
// an error, tx may hold part of the write and must be rolled back (see
// [JobRepository.CreateTx]). A local runner starts the job as soon as the
// commit is known to it (with jobsbun, when the transaction was begun with
// jobsbun.RunInTx and ctx is the one it passed in), otherwise at its next
// poll ([WithPollInterval]).
func (r *Runner) EnqueueTx(ctx context.Context, tx any, kind string, payload any, opts ...EnqueueOption) (*Job, error) {
	j, err := r.newJob(kind, payload, opts)
	if err != nil {
		return nil, err
	}
	done := r.enqueueHooks(ctx, j)
	err = r.repo.CreateTx(ctx, tx, j)
	if done != nil {
		done(err)
	}
	if err != nil {
		return nil, err
	}
	if j.RunAt.After(time.Now()) {
		// Before the commit the job is invisible, so a wake-up now would
		// find nothing (and on SQLite wait for the caller's write lock);
		// the repository announces the commit instead. A later start
		// still needs its timer.
		r.enqueued(j)
	}
	return j, nil
}

// EnqueueMany creates several jobs in one transaction: all of them or, on
// error, none, except after [ErrOutcomeUnknown], when all of them or none
// may exist. It returns them in the order of reqs; errors are those of
// [Runner.Enqueue], and the rules that Enqueue states for ctx and for
// errors hold for the write of all the jobs together.
func (r *Runner) EnqueueMany(ctx context.Context, reqs ...EnqueueRequest) ([]*Job, error) {
	js := make([]*Job, len(reqs))
	for i, q := range reqs {
		j, err := r.newJob(q.Kind, q.Payload, q.Options)
		if err != nil {
			return nil, err
		}
		for _, k := range q.After {
			if k < 0 || k >= i {
				return nil, invalid("enqueue", "request %d runs after request %d, which is not an earlier request of the call", i, k)
			}
			j.After = append(j.After, js[k])
			r.depsUsed.Store(true)
		}
		js[i] = j
	}
	if len(js) == 0 {
		return js, nil
	}
	var dones []func(error)
	for _, j := range js {
		if done := r.enqueueHooks(ctx, j); done != nil {
			dones = append(dones, done)
		}
	}
	err := r.repo.Create(ctx, js...)
	for _, done := range dones {
		done(err)
	}
	if err != nil {
		return nil, err
	}
	for _, j := range js {
		r.enqueued(j)
	}
	return js, nil
}

// EnqueueBatch creates jobs and their batch in one transaction, all or
// none (see [Job].Batch): batch describes the batch's callback, a job
// that runs once every job of the batch has ended, whatever their
// outcome, and reads their outcomes through its DependsOn; a batch whose
// Kind is "" gets [BatchKind] and no callback, and ends by itself. Its
// After must be empty: the batch runs after all of reqs, whose After may
// name earlier requests of reqs as for [Runner.EnqueueMany]. It returns
// the batch, waiting, and the jobs of reqs in order. Watching the batch
// shows the progress of its jobs together; canceling it cancels those that
// have not ended. Errors are those of [Runner.EnqueueMany]; a batch
// without jobs is [ErrInvalidArgument].
func (r *Runner) EnqueueBatch(ctx context.Context, batch EnqueueRequest, reqs ...EnqueueRequest) (*Job, []*Job, error) {
	if len(reqs) == 0 {
		return nil, nil, invalid("enqueue", "a batch needs at least one job")
	}
	if len(batch.After) > 0 {
		return nil, nil, invalid("enqueue", "a batch runs after its jobs: its After must be empty")
	}
	if batch.Kind == "" {
		batch.Kind = BatchKind
	}
	batch.After = make([]int, len(reqs))
	for i := range reqs {
		batch.After[i] = i
	}
	batch.Options = append(slices.Clip(batch.Options), func(c *enqueueConfig) { c.job.Batch = true })
	js, err := r.EnqueueMany(ctx, append(slices.Clip(reqs), batch)...)
	if err != nil {
		return nil, nil, err
	}
	return js[len(reqs)], js[:len(reqs)], nil
}

// newJob builds an unsaved job from a kind, a payload and options.
func (r *Runner) newJob(kind string, payload any, opts []EnqueueOption) (*Job, error) {
	const op = "enqueue"
	if err := checkName(op, "kind", kind, false); err != nil {
		return nil, err
	}
	if !r.cfg.allowAnyKind && kind != BatchKind && r.handler(kind) == nil && r.hasHandlers() {
		return nil, newError(ErrUnknownKind, op, uuid.Nil, "no handler for kind %q", kind)
	}
	raw, err := encodePayload(payload)
	if err != nil {
		return nil, err
	}
	c := enqueueConfig{job: &Job{Kind: kind, Payload: raw}}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.maxAttemptsSet && c.job.MaxAttempts < 1 {
		return nil, invalid(op, "max attempts %d is under 1", c.job.MaxAttempts)
	}
	if len(c.job.DependsOn) > 0 {
		r.depsUsed.Store(true)
	}
	if !c.runAt.IsZero() {
		c.job.RunAt = c.runAt
		if now := time.Now(); now.After(c.runAt) {
			c.job.RunAt = now
		}
	}
	return c.job, nil
}

// encodePayload turns a payload into JSON; raw JSON is kept as is.
func encodePayload(p any) (json.RawMessage, error) {
	switch v := p.(type) {
	case json.RawMessage:
		return v, nil
	case []byte:
		return v, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, &Error{Code: ErrInvalidArgument, Op: "enqueue", Msg: "payload cannot be encoded as JSON", Err: err}
	}
	return b, nil
}

// enqueued wakes the fetcher for a job this runner just created: now when it
// is ready, or when its time comes.
func (r *Runner) enqueued(j *Job) {
	if j.Duplicate || j.Status != StatusPending {
		return
	}
	r.wakeAt(j.RunAt)
}
