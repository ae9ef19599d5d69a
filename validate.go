package jobs

import (
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file holds the input checks shared by the repositories of this module,
// so that memory, SQLite and PostgreSQL refuse exactly the same things.

// prepareNew validates a job for Create and fills in what the repository
// owns: ID, status, defaults and timestamps. It changes nothing on error.
func prepareNew(j *Job, now time.Time, maxPayload int) error {
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
	if len(j.UniqueKey) > MaxUniqueKeyLength || !utf8.ValidString(j.UniqueKey) || hasNUL(j.UniqueKey) {
		return invalid(op, "unique key must be valid UTF-8 without NUL, at most %d bytes", MaxUniqueKeyLength)
	}
	if err := checkRunAt(op, uuid.Nil, j.RunAt); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return &Error{Code: codeInternal, Op: op, Msg: "cannot generate a job ID", Err: err}
	}
	j.ID = id
	if j.Queue == "" {
		j.Queue = DefaultQueue
	}
	if blankJSON(j.Payload) {
		j.Payload = []byte("null")
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = DefaultMaxAttempts
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
	j.CancelRequested = false
	j.CreatedAt, j.UpdatedAt = now, now
	j.StartedAt, j.FinishedAt = time.Time{}, time.Time{}
	j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = "", "", time.Time{}
	j.Duplicate = false
	return nil
}

// checkName validates a kind or queue name.
func checkName(op, what, s string, emptyOK bool) error {
	switch {
	case s == "" && emptyOK:
		return nil
	case s == "":
		return invalid(op, "%s is empty", what)
	case len(s) > MaxNameLength:
		return invalid(op, "%s is %d bytes, over the limit of %d", what, len(s), MaxNameLength)
	case !utf8.ValidString(s) || hasNUL(s):
		return invalid(op, "%s must be valid UTF-8 without NUL", what)
	}
	return nil
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
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

// checkClaim validates a ClaimQuery.
func checkClaim(q ClaimQuery) error {
	const op = "claim"
	if err := checkName(op, "owner", q.Owner, false); err != nil {
		return err
	}
	if q.Limit < 1 || q.Limit > MaxClaimLimit {
		return invalid(op, "limit %d is not in [1, %d]", q.Limit, MaxClaimLimit)
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
	return nil
}

// checkList validates a ListQuery and returns its effective limit and the
// cursor's ID (uuid.Nil for the first page).
func checkList(q ListQuery) (limit int, after uuid.UUID, err error) {
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
	switch {
	case q.Limit < 0 || q.Limit > MaxListLimit:
		return 0, uuid.Nil, invalid(op, "limit %d is not in [0, %d]", q.Limit, MaxListLimit)
	case q.Limit == 0:
		limit = DefaultListLimit
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
	if d <= 0 {
		return invalid(op, "lease duration %v is not positive", d)
	}
	return nil
}

// checkCompletion validates one Completion for Finish, with maxResult as the
// size limit of a result.
func checkCompletion(c Completion, maxResult int) error {
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
	return nil
}

// leaseExpiredError is the attempt error every repository records when
// RescueExpired requeues or fails a job whose lease ran out.
const leaseExpiredError = "lease expired"

// leaseLost is the error of a fenced-out write.
func leaseLost(op string, id uuid.UUID) *Error {
	return newError(ErrLeaseLost, op, id, "lease lost")
}

// canceledInstead is the error of a completion that was stored as canceled
// instead of the status it asked for, because a cancel had been requested.
func canceledInstead(op string, id uuid.UUID, asked Status) *Error {
	return newError(ErrCanceled, op, id, "a cancel was requested: stored as canceled, not %s", asked)
}

// notFound is the error of an unknown ID.
func notFound(op string, id uuid.UUID) *Error {
	return newError(ErrNotFound, op, id, "job not found")
}

// appendAttemptError returns the history with one more entry, keeping the
// most recent MaxErrorHistory entries.
func appendAttemptError(h []AttemptError, attempt int, msg string, at time.Time) []AttemptError {
	h = append(h, AttemptError{Attempt: attempt, Error: truncateError(msg), At: at})
	if len(h) > MaxErrorHistory {
		h = h[len(h)-MaxErrorHistory:]
	}
	return h
}

// checkRescueLimit validates the limit of RescueExpired.
func checkRescueLimit(op string, limit int) error {
	if limit < 1 || limit > MaxClaimLimit {
		return invalid(op, "limit %d is not in [1, %d]", limit, MaxClaimLimit)
	}
	return nil
}
