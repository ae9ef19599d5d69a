package jobs

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// JobRepository is the storage contract of the library: everything the
// [Runner] and callers need to persist jobs. Implementations in this module:
// jobsbun.Repository (SQLite and PostgreSQL, opened by jobsqlite.Open and
// jobspg.Open) and [MemoryRepository]. The package jobstest has the
// conformance suite that every implementation must pass; that suite is the
// precise definition of this contract.
//
// All methods are safe for concurrent use. Every method that writes is
// atomic: it changes all the jobs it names or none of them (batch worker
// writes skip the items whose lease was lost, see below). No method holds a
// transaction open after it returns. Errors are [*Error] values with the
// codes named below; storage failures have [ErrUnavailable] (busy past its
// retries, read-only, full, unreachable) and never expose driver errors as
// part of the contract. After Close, methods return [ErrClosed]. A call
// whose ctx is already done writes nothing and returns an error that
// matches ctx.Err() with [errors.Is].
//
// Writes made by workers (UpdateProgress, Heartbeat, Finish, Release) are
// fenced by [Lease]: they apply only while the job is running under that
// lease token, and report [ErrLeaseLost] for each job where they matched
// nothing, including jobs that no longer exist (pruned): never ErrNotFound.
// Expiry alone fences nothing: a lease that expired but was not yet rescued
// still works, and a heartbeat renews it. Batch methods return the errors of
// failed items joined with [errors.Join]; each is an [*Error] carrying the
// JobID. Batch methods called with no items do nothing and return nil.
//
// Returned jobs are copies: changing them, or the jobs and byte slices
// passed in, changes nothing stored. Every time a repository returns is in
// UTC (Location() == time.UTC), kept to the microsecond.
type JobRepository interface {
	// Create validates and inserts new jobs in one transaction: all or none.
	// It sets ID (UUIDv7), Status (pending), Attempt, the timestamps, and
	// the defaults (Queue "default", MaxAttempts 3, RunAt now, Payload
	// null when empty or only JSON whitespace); afterwards each job holds
	// what Get returns for it (times in UTC, truncated to the microsecond;
	// PostgreSQL may reformat the payload's JSON). A job whose UniqueKey matches an existing job is not
	// inserted: its fields are replaced by the existing job's and Duplicate
	// is set. Invalid input (empty or long names, invalid JSON, MaxAttempts
	// outside [0, math.MaxInt32], Priority outside the int32 range, negative
	// Timeout, a RunAt outside the years 1 to 9999 in UTC, a preset ID, a
	// nil job, malformed Metadata) returns ErrInvalidArgument
	// and a payload or Metadata over the limit ErrTooLarge; nothing is written and the
	// jobs passed in are left unchanged, so the caller can fix and retry.
	// Unique keys also deduplicate within one call: a later job with the
	// key of an earlier one becomes a Duplicate of it. Unique keys stay
	// taken until the job holding them is pruned; a Create racing that
	// Prune returns either the pruned job as a Duplicate or a new job.
	//
	// The error tells exactly what was stored. A nil error means every job
	// is stored (or, with Duplicate set, another job had its key). An
	// error means none is, and leaves the jobs passed in unchanged, with
	// one exception: [ErrOutcomeUnknown], returned only when the write
	// failed in a way that the database cannot confirm either way, after
	// which all of the jobs or none may be stored. When ctx ends before the
	// write has started, Create writes nothing and returns an error that
	// matches ctx.Err() with errors.Is; once the write has started, ctx
	// ending does not cut it short: Create waits for it (for a bounded
	// time, which each implementation documents) and reports its outcome.
	Create(ctx context.Context, jobs ...*Job) error

	// CreateTx is Create inside the caller's own database transaction: the
	// jobs become visible when, and only if, tx commits. tx is the
	// implementation's transaction type (jobsbun: a bun.Tx); any other
	// value, nil included, is ErrInvalidArgument and writes nothing, so a
	// wrong argument never turns into a write outside the transaction. The
	// caller owns the commit: after a nil error the jobs are written in tx;
	// after an error (the jobs passed in are left unchanged) tx may hold
	// part of the write and must be rolled back. Implementations without
	// transactions (MemoryRepository) return ErrInvalidArgument.
	CreateTx(ctx context.Context, tx any, jobs ...*Job) error

	// Get returns the job with the given ID, or ErrNotFound.
	Get(ctx context.Context, id uuid.UUID) (*Job, error)

	// List returns jobs matching q, newest first, one page at a time.
	// Pages are keyed by a cursor, never by an offset, so each page costs
	// the same however deep it is. Next is "" exactly when no job matching
	// q is older than the page's last job. Jobs created while a caller pages
	// are newer than its cursor and do not appear in later pages; every job
	// that existed at the first page and still exists is returned once. A
	// malformed cursor, an unknown status or a limit outside [0,
	// 1000] is ErrInvalidArgument.
	List(ctx context.Context, q ListQuery) (*Page, error)

	// Stats counts jobs by status, kind and queue, and lists the paused
	// queues (Paused, sorted, with or without jobs).
	Stats(ctx context.Context) (*Stats, error)

	// PauseQueue pauses a queue: a Claim that begins after PauseQueue has
	// returned returns no job of that queue until ResumeQueue (a Claim
	// already under way may still return some; [Runner.PauseQueue] hands
	// those back). Nothing else changes: its pending jobs stay pending
	// (Create, RequestCancel and List work as before), and its running
	// jobs keep their leases and finish, retry or are rescued as usual (a
	// job that goes back to pending waits for the resume). A queue may be
	// paused before any job exists in it; the pause is stored, so it holds
	// for every process and across restarts. Pausing a paused queue is a
	// no-op. A malformed queue name (empty, longer than 128 bytes, not
	// UTF-8 or with NUL) is ErrInvalidArgument and nothing is written.
	PauseQueue(ctx context.Context, queue string) error

	// ResumeQueue ends the pause of a queue: Claim returns its jobs again.
	// Resuming a queue that is not paused is a no-op. A malformed queue
	// name is ErrInvalidArgument, as for PauseQueue.
	ResumeQueue(ctx context.Context, queue string) error

	// Claim atomically moves up to q.Limit pending jobs whose RunAt has come
	// to running, highest Priority first, then by turns among concurrency
	// keys (see Fairness below) and then oldest RunAt, and returns
	// them. Each claimed job gets a fresh lease token, LeaseOwner q.Owner, a
	// lease that expires after q.LeaseDuration, StartedAt now, and Attempt
	// incremented; the lease runs from when the claim lands, after any wait
	// for the database. Two concurrent claims never return the same job. Only
	// jobs of q.Queues and q.Kinds are claimed (empty: any). It returns an
	// empty slice, not an error, when nothing is ready. The order of the
	// returned slice is unspecified. A job whose stored row cannot be read
	// (damaged by other code) is not returned and does not stop the others
	// from being claimed: it ends failed at once, its Error saying why. A
	// query without an owner, with a limit outside [1, 1000],
	// with a lease duration <= 0 or with an invalid limit is
	// ErrInvalidArgument.
	//
	// Jobs of a paused queue are not claimed (see PauseQueue).
	//
	// Flow control. A claim admits a job only while it fits the limits of
	// q.KindLimits for its kind and q.QueueLimits for its queue (see
	// [Limit]), counted over the whole storage, every owner's jobs alike,
	// and counting the jobs this claim takes: Running bounds the jobs in
	// status running of the kind (or queue), PerKey those of each
	// ConcurrencyKey (jobs without a key are not counted per key), Rate
	// the jobs claimed within the last Period and KeyRate those of each
	// key. A job running under an expired lease still counts until
	// RescueExpired (or a rescue of a dead owner) moves it: a slot is
	// freed by a Finish, Release or rescue. Retried attempts count as new
	// starts. Jobs that do not fit are skipped, not waited for: the
	// claim takes the next ones in order that fit, or returns fewer than
	// q.Limit. The check and the claim are atomic across every process
	// and connection: concurrent claims never admit more than a limit
	// allows. The limits are those of the claiming query: a claim that
	// declares no limit for a kind takes its jobs freely (running jobs
	// still count against later limited claims), so every claimer should
	// declare the same limits. q.NextStart reports when a rate limit will
	// let the next held-back job start.
	//
	// Fairness. Among ready jobs of equal priority in one queue, claims
	// take the concurrency keys in turn (start-time fair queuing): Create
	// gives each job its place in line, right after the last pending job
	// of its key in its queue, and never before the first ready job of the
	// queue. A key with 10 000 jobs queued thus holds 10 000 turns ahead,
	// and a job of another key created later is among the next claimed.
	// Jobs without a key take their turns as one key "". The jobs of a key
	// created in one call are in line by priority, RunAt and ID; a key's
	// later job never goes before its earlier pending ones, whatever their
	// RunAt. A job keeps its place when a failed attempt is retried, released or
	// rescued; an operator's Retry gives it a new place, as a new job. Jobs
	// created concurrently may share a place; RunAt decides.
	Claim(ctx context.Context, q ClaimQuery) ([]*Job, error)

	// UpdateProgress stores each update's progress (and its checkpoint and
	// output, when it has a checkpoint) and renews its lease to now +
	// lease, in one transaction; now is read when the write lands, so a
	// write that waited for the database still grants a whole lease. An
	// invalid progress, checkpoint or item is ErrInvalidArgument (too
	// large: ErrTooLarge) and nothing is written. Updates whose lease was
	// lost report ErrLeaseLost and store nothing; the others are still
	// written. When one lease has several updates, they apply in order:
	// the last progress and the last checkpoint are stored, and the outputs
	// are appended one after the other. A lease duration <= 0 is
	// ErrInvalidArgument.
	UpdateProgress(ctx context.Context, lease time.Duration, updates ...ProgressUpdate) error

	// ReadOutput returns up to limit items of job id's output, those
	// numbered after `after`, in order (the first is after+1). Only items
	// stored with a checkpoint or an outcome exist. It returns an empty
	// slice, not an error, when no item is numbered after `after`. An
	// unknown ID is ErrNotFound; after < 0 or a limit outside [1, 1000] is
	// ErrInvalidArgument, checked before the job is looked up.
	ReadOutput(ctx context.Context, id uuid.UUID, after int64, limit int) ([]OutputItem, error)

	// Heartbeat renews the leases to now + lease, in one statement, with
	// now read when the write lands (as for UpdateProgress). Leases that
	// were lost report ErrLeaseLost; the others are still renewed. A lease
	// duration <= 0 is ErrInvalidArgument.
	Heartbeat(ctx context.Context, lease time.Duration, leases ...Lease) error

	// Finish records the outcomes of attempts in one transaction. A
	// completion moves its running job to the completion's status: a
	// terminal one (clearing the lease and setting FinishedAt), or pending
	// (a retry at RunAt; the attempt stays counted). Result is stored only
	// with StatusSucceeded; one that is empty or only JSON whitespace is no
	// result. A non-empty Error becomes the job's Error and is appended to
	// Errors; an empty one leaves both as they were, so Error keeps the
	// most recent failure.
	//
	// A cancel request wins over the attempt's outcome: a completion of a
	// job with CancelRequested ends it canceled, whatever status it asks
	// for (its result is not stored, its Error is recorded as usual), and
	// reports an [ErrCanceled] error naming the job; that completion is
	// written. So once RequestCancel has returned a running job, the job
	// ends canceled.
	//
	// Completions with another status, an invalid result, an invalid
	// progress or a RunAt outside the years 1 to 9999 (UTC) are
	// ErrInvalidArgument (a result over the limit ErrTooLarge) and nothing
	// is written. Completions whose lease was lost report ErrLeaseLost and
	// change nothing; the others are still written, also when a completion
	// under a stale lease and one under the current lease of the same job
	// come in one call. A lease named twice is applied once: its later
	// completions report ErrLeaseLost.
	Finish(ctx context.Context, completions ...Completion) error

	// Release returns running jobs to pending at once without counting the
	// attempt (Attempt is decremented), for a worker that stops before its
	// jobs finish. RunAt is left as it was, so a released job keeps its
	// place in line. A released job with CancelRequested becomes canceled
	// (its Attempt is decremented too) and reports an [ErrCanceled] error
	// naming it, as Finish does. Lost leases report ErrLeaseLost; the others
	// are still released.
	Release(ctx context.Context, leases ...Lease) error

	// RequestCancel cancels a job. A pending job becomes canceled at once. A
	// running job gets CancelRequested, and the worker that owns it finishes
	// it as canceled (or releases it, which cancels it). A job canceled
	// here gets FinishedAt. It returns the job as stored after the call; a job
	// already terminal is ErrConflict and unchanged; an unknown ID ErrNotFound.
	// Calling it again on a running job with CancelRequested is a no-op.
	RequestCancel(ctx context.Context, id uuid.UUID) (*Job, error)

	// CancelRequests returns the IDs of the running jobs leased by owner that
	// have CancelRequested set. It is one indexed query, cheap enough to
	// call every few tens of milliseconds. An empty owner is
	// ErrInvalidArgument.
	CancelRequests(ctx context.Context, owner string) ([]uuid.UUID, error)

	// RescueExpired finds up to limit running jobs whose lease has expired
	// and returns them to pending (the attempt stays counted), or to failed
	// when no attempts remain, or to canceled when a cancel was requested;
	// it clears their leases, so the old owner's writes are fenced out, and
	// records "lease expired" as the attempt's error (unless canceled). Each
	// expired lease is rescued once, even with several rescuers at once.
	// It returns the rescued jobs as stored after the change. A lease has
	// expired when its LeaseExpiresAt is before the time of the call: a
	// call that waited for the database (another connection held its
	// write lock) judges leases by when it was made, not by when it ran,
	// since their owners were kept waiting as well. A limit outside [1,
	// 1000] is ErrInvalidArgument.
	RescueExpired(ctx context.Context, limit int) ([]*Job, error)

	// Prune deletes terminal jobs that finished before the given time, with
	// their output, in batches small enough not to hold a write lock for
	// long, and returns
	// how many it deleted (all of them, over as many batches as needed).
	// Pending and running jobs are never pruned. A pruned job's unique key
	// is free again.
	Prune(ctx context.Context, finishedBefore time.Time) (int, error)

	// Tick writes the state of schedules (see [Runner.Schedule]) in one
	// transaction: for each tick it creates the schedule's row, or updates
	// its Spec, Kind and NextTick, and when the tick's Job is non-nil it
	// also creates Job as Create would if, and only if, LastTick is after
	// the stored last tick (or none is stored), and stores LastTick as the
	// last tick. So of any number of calls for one tick, concurrent or not,
	// in one process or many, exactly one creates its job, and a tick at
	// or before the stored one creates nothing. created[i] reports whether
	// ticks[i].Job was created; a created job is then as Create leaves it,
	// and one whose UniqueKey was taken is the job holding it with
	// Duplicate set (the tick still counts as done). With a nil Job,
	// LastTick is ignored. Names must be distinct within a call. An invalid
	// tick ([ScheduleInfo.Validate]) or job is ErrInvalidArgument and
	// writes nothing; jobs not created are left unchanged. Ticks are
	// stored to the microsecond.
	Tick(ctx context.Context, ticks ...ScheduleTick) (created []bool, err error)

	// Schedules returns the stored state of every schedule that Tick ever
	// wrote, sorted by name.
	Schedules(ctx context.Context) ([]ScheduleInfo, error)

	// Retry runs a failed or canceled job again: it becomes pending at
	// once (RunAt now) with a fresh attempt budget (Attempt 0, MaxAttempts
	// as it was), as a new job would, keeping its ID, payload, metadata,
	// unique key and history: Error and Errors stay as they were, so the
	// earlier attempts' errors remain listed. Its result, progress,
	// checkpoint and output (OutputSeq 0, the items deleted), cancel
	// request, StartedAt and FinishedAt are cleared. It returns the job as
	// stored after the call. A job in any other status is ErrConflict and
	// unchanged; an unknown ID ErrNotFound.
	//
	// A batch (see Job.Batch) is retried with its jobs that did not
	// succeed, in the same write: they are retried as above (a batch
	// among them as this one is), and the batch waits for them again,
	// its Progress counting those that succeeded as done, and runs its
	// callback (or, of kind BatchKind, ends) once they have ended. A batch
	// whose jobs all succeeded is retried as any job: its callback runs
	// again. It is ErrConflict, and nothing changes, while a job of the
	// batch has not ended, and for a batch of kind BatchKind with nothing
	// to retry.
	Retry(ctx context.Context, id uuid.UUID) (*Job, error)

	// RetryMany retries, as Retry does, up to q.Limit (0: 50, at most
	// 1000) failed or canceled jobs that match q, newest first, in one
	// short write, and returns their IDs newest first. Jobs in other
	// statuses are skipped: q.Statuses narrows the failed and canceled
	// ones (a status other than these matches nothing). Only jobs older
	// than q.Cursor, a job ID, are considered when it is set, so a caller
	// continues a sweep by passing the last ID returned, until a call
	// returns none: every job that matched when the sweep began and still
	// matches is retried once, even when it fails again meanwhile. It
	// skips batches: Retry retries one with its jobs. Invalid filters are
	// ErrInvalidArgument, as for List.
	RetryMany(ctx context.Context, q ListQuery) ([]uuid.UUID, error)

	// CancelMany cancels, as RequestCancel does, up to q.Limit (0: 50, at
	// most 1000) jobs that match q, newest first, in one short write, and
	// returns their IDs newest first: pending jobs become canceled, running
	// ones get CancelRequested (their workers stop them, as after
	// RequestCancel). Terminal jobs, and running jobs that already have a
	// cancel request, are skipped; q.Statuses narrows the pending and
	// running ones. q.Cursor continues a sweep as for RetryMany. Invalid
	// filters are ErrInvalidArgument, as for List.
	CancelMany(ctx context.Context, q ListQuery) ([]uuid.UUID, error)

	// Delete deletes a finished (succeeded, failed or canceled) job with
	// its output; its unique key is free again. A pending or running job
	// is ErrConflict and unchanged; an unknown ID ErrNotFound.
	Delete(ctx context.Context, id uuid.UUID) error

	// DeleteMany deletes, as Delete does, up to q.Limit (0: 50, at most
	// 1000) finished jobs that match q, newest first, in one short write,
	// and returns their IDs newest first. Pending and running jobs are
	// skipped; q.Statuses narrows the finished ones. q.Cursor continues a
	// sweep as for RetryMany. Invalid filters are ErrInvalidArgument, as
	// for List.
	DeleteMany(ctx context.Context, q ListQuery) ([]uuid.UUID, error)

	// Close releases the repository's resources. Repositories that were
	// handed a database do not close it. Close is idempotent.
	Close() error
}
