package jobs

import (
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// This file holds the input checks shared by the repositories of this module,
// so that memory, SQLite and PostgreSQL refuse exactly the same things.

// Prepare validates j for [JobRepository.Create] and fills in what the
// repository owns: ID, status, defaults and timestamps, as of now. A payload
// over maxPayload bytes is [ErrTooLarge]; any other invalid field is
// [ErrInvalidArgument]. It changes nothing on error. Every implementation of
// JobRepository calls it, so all of them accept and fill in alike.
func (j *Job) Prepare(now time.Time, maxPayload int) error {
	const op = "create"
	if j == nil {
		return invalid(op, "job is nil")
	}
	if j.ID != uuid.Nil {
		return invalid(op, "job already has an ID; the repository assigns it")
	}
	if err := checkName(op, "kind", j.Kind, false); err != nil {
		return err
	}
	if err := checkName(op, "queue", j.Queue, true); err != nil {
		return err
	}
	if len(j.Payload) > maxPayload {
		return newError(ErrTooLarge, op, uuid.Nil, "payload is %d bytes, over the limit of %d", len(j.Payload), maxPayload)
	}
	if !validJSON(j.Payload) {
		return invalid(op, "payload is not valid JSON")
	}
	if j.MaxAttempts < 0 || j.MaxAttempts > math.MaxInt32 {
		return invalid(op, "max attempts %d is not in [0, %d]", j.MaxAttempts, math.MaxInt32)
	}
	// PostgreSQL keeps them in 32-bit columns; every backend refuses alike.
	if j.Priority < math.MinInt32 || j.Priority > math.MaxInt32 {
		return invalid(op, "priority %d is not in [%d, %d]", j.Priority, math.MinInt32, math.MaxInt32)
	}
	if j.Timeout < 0 {
		return invalid(op, "timeout %v is negative", j.Timeout)
	}
	if len(j.UniqueKey) > rules.MaxUniqueKeyLength || !utf8.ValidString(j.UniqueKey) || rules.HasNUL(j.UniqueKey) {
		return invalid(op, "unique key must be valid UTF-8 without NUL, at most %d bytes", rules.MaxUniqueKeyLength)
	}
	if err := checkName(op, "concurrency key", j.ConcurrencyKey, true); err != nil {
		return err
	}
	if err := checkRunAt(op, uuid.Nil, j.RunAt); err != nil {
		return err
	}
	if err := checkMetadata(op, j.Metadata); err != nil {
		return err
	}
	if j.Batch && len(j.DependsOn) == 0 && len(j.After) == 0 {
		return invalid(op, "a batch needs at least one job: it has no dependency")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return &Error{Code: codeInternal, Op: op, Msg: "cannot generate a job ID", Err: err}
	}
	j.ID = id
	if j.Queue == "" {
		j.Queue = rules.DefaultQueue
	}
	if blankJSON(j.Payload) {
		j.Payload = []byte("null")
	}
	j.Metadata = cloneMetadata(j.Metadata)
	j.RunAnyway = j.RunAnyway || j.Batch
	if j.MaxAttempts == 0 {
		j.MaxAttempts = rules.DefaultMaxAttempts
	}
	// Times are kept to the microsecond, the precision of PostgreSQL, so
	// that the job Create fills in is exactly the job Get returns.
	now = now.UTC().Truncate(time.Microsecond)
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	j.RunAt = j.RunAt.UTC().Truncate(time.Microsecond)
	j.Status = StatusPending
	j.Attempt = 0
	j.Result = nil
	j.Progress = Progress{}
	j.Error, j.Errors = "", nil
	j.Checkpoint, j.OutputSeq = nil, 0
	j.CancelRequested = false
	j.CreatedAt, j.UpdatedAt = now, now
	j.StartedAt, j.FinishedAt = time.Time{}, time.Time{}
	j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = "", "", time.Time{}
	j.Duplicate = false
	return nil
}

// checkName validates a kind, queue or owner name.
func checkName(op, what, s string, emptyOK bool) error {
	if msg := rules.Name(what, s, emptyOK); msg != "" {
		return invalid(op, "%s", msg)
	}
	return nil
}

// checkRunAt refuses a run-at time (of Create or of a retry) outside the
// years 1 to 9999 in UTC; the zero time, which means now, passes. SQLite
// stores times as text and compares them as text, which orders them right
// only with four-digit years: "10000-…" sorts before "2026-…".
func checkRunAt(op string, id uuid.UUID, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return newError(ErrInvalidArgument, op, id, "run at %s is outside the years 1 to 9999 (UTC)", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// Validate returns the [ErrInvalidArgument] error that every implementation
// of [JobRepository.Claim] returns for q, or nil when q is valid.
func (q ClaimQuery) Validate() error {
	const op = "claim"
	if err := checkName(op, "owner", q.Owner, false); err != nil {
		return err
	}
	if q.Limit < 1 || q.Limit > rules.MaxClaimLimit {
		return invalid(op, "limit %d is not in [1, %d]", q.Limit, rules.MaxClaimLimit)
	}
	if q.LeaseDuration <= 0 {
		return invalid(op, "lease duration %v is not positive", q.LeaseDuration)
	}
	for _, s := range q.Queues {
		if err := checkName(op, "queue", s, false); err != nil {
			return err
		}
	}
	for _, s := range q.Kinds {
		if err := checkName(op, "kind", s, false); err != nil {
			return err
		}
	}
	if err := validateLimits(op, "kind", q.KindLimits); err != nil {
		return err
	}
	return validateLimits(op, "queue", q.QueueLimits)
}

// Page validates q for [JobRepository.List] and returns the page size to
// use and the ID that the page starts after (uuid.Nil for the first page).
// Every implementation calls it, so all of them refuse alike, with
// [ErrInvalidArgument].
func (q ListQuery) Page() (limit int, after uuid.UUID, err error) {
	const op = "list"
	for _, s := range q.Statuses {
		if !s.Valid() {
			return 0, uuid.Nil, invalid(op, "unknown status %q", s)
		}
	}
	if err := checkName(op, "kind", q.Kind, true); err != nil {
		return 0, uuid.Nil, err
	}
	if err := checkName(op, "queue", q.Queue, true); err != nil {
		return 0, uuid.Nil, err
	}
	if y := q.CreatedBefore.UTC().Year(); !q.CreatedBefore.IsZero() && (y < 1 || y > 9999) {
		return 0, uuid.Nil, invalid(op, "created before %s is outside the years 1 to 9999 (UTC)", q.CreatedBefore.UTC().Format(time.RFC3339))
	}
	switch {
	case q.Limit < 0 || q.Limit > rules.MaxListLimit:
		return 0, uuid.Nil, invalid(op, "limit %d is not in [0, %d]", q.Limit, rules.MaxListLimit)
	case q.Limit == 0:
		limit = rules.DefaultListLimit
	default:
		limit = q.Limit
	}
	if q.Cursor != "" {
		after, err = uuid.Parse(q.Cursor)
		if err != nil || len(q.Cursor) != 36 {
			return 0, uuid.Nil, invalid(op, "malformed cursor")
		}
	}
	return limit, after, nil
}

// checkLeaseDuration validates the lease argument of UpdateProgress and Heartbeat.
func checkLeaseDuration(op string, d time.Duration) error {
	if msg := rules.LeaseDuration(d); msg != "" {
		return invalid(op, "%s", msg)
	}
	return nil
}

// Validate returns the error that every implementation of
// [JobRepository.Finish] returns for c before writing anything: a result
// over maxResult bytes is [ErrTooLarge], anything else invalid is
// [ErrInvalidArgument]. It returns nil when c is valid.
func (c Completion) Validate(maxResult int) error {
	const op = "finish"
	switch c.Status {
	case StatusSucceeded, StatusFailed, StatusCanceled, StatusPending:
	default:
		return newError(ErrInvalidArgument, op, c.Lease.JobID, "cannot finish an attempt as %q", c.Status)
	}
	if len(c.Result) > maxResult {
		return newError(ErrTooLarge, op, c.Lease.JobID, "result is %d bytes, over the limit of %d", len(c.Result), maxResult)
	}
	if !validJSON(c.Result) {
		return newError(ErrInvalidArgument, op, c.Lease.JobID, "result is not valid JSON")
	}
	if err := checkRunAt(op, c.Lease.JobID, c.RunAt); err != nil {
		return err
	}
	if c.Progress != nil {
		if err := c.Progress.Validate(); err != nil {
			return err
		}
	}
	return checkItems(op, c.Lease.JobID, c.Output, maxResult)
}

// Validate returns the error that every implementation of
// [JobRepository.UpdateProgress] returns for u before writing anything: a
// checkpoint or an output item over maxPayload bytes is [ErrTooLarge], an
// invalid progress, checkpoint or item, or output without a checkpoint, is
// [ErrInvalidArgument]. It returns nil when u is valid.
func (u ProgressUpdate) Validate(maxPayload int) error {
	const op = "update progress"
	if err := u.Progress.Validate(); err != nil {
		return err
	}
	if u.Checkpoint == nil {
		if len(u.Output) > 0 {
			return newError(ErrInvalidArgument, op, u.Lease.JobID, "output without a checkpoint")
		}
		return nil
	}
	if err := checkValue(op, u.Lease.JobID, "checkpoint", u.Checkpoint, maxPayload); err != nil {
		return err
	}
	return checkItems(op, u.Lease.JobID, u.Output, maxPayload)
}

// checkItems validates output items.
func checkItems(op string, id uuid.UUID, items []json.RawMessage, maxPayload int) error {
	if len(items) > rules.MaxOutputBatch {
		return newError(ErrInvalidArgument, op, id, "%d output items in one write, over the limit of %d", len(items), rules.MaxOutputBatch)
	}
	for _, it := range items {
		if err := checkValue(op, id, "output item", it, maxPayload); err != nil {
			return err
		}
	}
	return nil
}

// checkValue validates one stored JSON value that must not be blank.
func checkValue(op string, id uuid.UUID, what string, v json.RawMessage, max int) error {
	switch {
	case len(v) > max:
		return newError(ErrTooLarge, op, id, "%s is %d bytes, over the limit of %d", what, len(v), max)
	case blankJSON(v) || !json.Valid(v):
		return newError(ErrInvalidArgument, op, id, "%s is not one valid JSON value", what)
	}
	return nil
}

// leaseLost is the error of a fenced-out write.
func leaseLost(op string, id uuid.UUID) *Error {
	return newError(ErrLeaseLost, op, id, rules.MsgLeaseLost)
}

// canceledInstead is the error of a completion that was stored as canceled
// instead of the status it asked for, because a cancel had been requested.
func canceledInstead(op string, id uuid.UUID, asked Status) *Error {
	return newError(ErrCanceled, op, id, "%s", rules.CanceledInstead(string(asked)))
}

// notFound is the error of an unknown ID.
func notFound(op string, id uuid.UUID) *Error {
	return newError(ErrNotFound, op, id, rules.MsgNotFound)
}

// appendAttemptError returns the history with one more entry, keeping the
// most recent rules.MaxErrorHistory entries.
func appendAttemptError(h []AttemptError, attempt int, msg string, at time.Time) []AttemptError {
	h = append(h, AttemptError{Attempt: attempt, Error: rules.ErrorText(msg), At: at})
	if len(h) > rules.MaxErrorHistory {
		h = h[len(h)-rules.MaxErrorHistory:]
	}
	return h
}

// checkRescueLimit validates the limit of RescueExpired.
func checkRescueLimit(op string, limit int) error {
	if msg := rules.RescueLimit(limit); msg != "" {
		return invalid(op, "%s", msg)
	}
	return nil
}

// Validate returns the [ErrInvalidArgument] error that every implementation
// of [JobRepository.Tick] returns for s, or nil when s is valid: a schedule
// name, a spec of at most 256 bytes of UTF-8 and a kind, and ticks in the
// years 1 to 9999 (UTC) or zero.
func (s ScheduleInfo) Validate() error {
	const op = "tick"
	if err := checkName(op, "schedule name", s.Name, false); err != nil {
		return err
	}
	if len(s.Spec) > 256 || !utf8.ValidString(s.Spec) {
		return invalid(op, "spec of schedule %q is not at most 256 bytes of UTF-8", s.Name)
	}
	if err := checkName(op, "kind", s.Kind, false); err != nil {
		return err
	}
	for _, t := range []time.Time{s.LastTick, s.NextTick} {
		if err := checkRunAt(op, uuid.Nil, t); err != nil {
			return invalid(op, "tick %s of schedule %q is outside the years 1 to 9999 (UTC)", t.UTC().Format(time.RFC3339), s.Name)
		}
	}
	return nil
}
