package jobs

import (
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// Status is where a job is in its life.
//
// The allowed transitions are:
//
//	waiting → pending                   its dependencies ended (see Job.DependsOn)
//	waiting → canceled                  a dependency failed or was canceled, or canceled by a caller
//	pending → running                   claimed by a worker
//	pending → canceled                  canceled before it started
//	running → succeeded | failed | canceled
//	running → pending                   retry, lease expired and rescued, or released at shutdown
//
// Succeeded, failed and canceled are terminal: a terminal job never changes
// again. Any other transition is refused with [ErrConflict].
type Status string

// The job statuses.
const (
	StatusWaiting   Status = "waiting"   // created after other jobs (DependsOn) that have not all ended
	StatusPending   Status = "pending"   // waiting to run, possibly not before RunAt
	StatusRunning   Status = "running"   // claimed by a worker that holds its lease
	StatusSucceeded Status = "succeeded" // the handler returned a result
	StatusFailed    Status = "failed"    // attempts used up, or a permanent error
	StatusCanceled  Status = "canceled"  // canceled by a caller
)

// BatchKind is the kind of a batch without a callback (see [Job].Batch): it
// runs no handler and ends by itself when its jobs have ended.
const BatchKind = "jobs.batch"

// Valid reports whether s is one of the six statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusWaiting, StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Terminal reports whether s is succeeded, failed or canceled.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Job is one unit of work and everything known about it. Repositories return
// fresh copies: changing a Job changes nothing stored.
//
// To create a job, fill in Kind and Payload and, optionally, Queue, Priority,
// MaxAttempts, RunAt, Timeout, UniqueKey, ConcurrencyKey and Metadata; the
// repository sets the rest.
type Job struct {
	ID          uuid.UUID       `json:"id"`
	Kind        string          `json:"kind"`
	Queue       string          `json:"queue"`
	Status      Status          `json:"status"`
	Priority    int             `json:"priority"` // higher runs first within a queue; int32 range
	Payload     json.RawMessage `json:"payload"`
	Result      json.RawMessage `json:"result,omitempty"`
	Progress    Progress        `json:"progress"`
	Error       string          `json:"error,omitempty"`      // the last attempt's error
	Errors      []AttemptError  `json:"errors,omitempty"`     // the last 100 attempt errors, oldest first
	Attempt     int             `json:"attempt"`              // attempts started so far
	MaxAttempts int             `json:"max_attempts"`         // attempts allowed, at most math.MaxInt32
	Timeout     time.Duration   `json:"timeout,omitempty"`    // per attempt; 0: none
	UniqueKey   string          `json:"unique_key,omitempty"` // idempotency key
	// ConcurrencyKey groups jobs for flow control (a user, a tenant): see
	// [WithConcurrencyKey]. Empty: no key.
	ConcurrencyKey string `json:"concurrency_key,omitempty"`
	// Metadata is a small map of strings stored with the job, set when it
	// is created (see [WithMetadata]) and never changed after: trace
	// context, a request ID or a user ID that travel with the job to its
	// handler and hooks. Nil when empty. Treat it as read-only.
	Metadata map[string]string `json:"metadata,omitempty"`
	// DependsOn lists the jobs this job runs after: created with them, it
	// is waiting until every one of them has ended, then pending. When one
	// of them fails or is canceled, the job is canceled at once, its Error
	// naming that dependency, unless RunAnyway is set. Create takes the
	// IDs of stored jobs here and adds those of After; it is never changed
	// after. A job's dependencies were all created before it, so they never
	// form a cycle.
	DependsOn []uuid.UUID `json:"depends_on,omitempty"`
	// After names dependencies among the jobs of the same Create call: each
	// must come earlier in the call (or already be created: its ID is
	// used). Create adds their IDs to DependsOn. It is never stored.
	After []*Job `json:"-"`
	// RunAnyway makes a job with dependencies run once they have all
	// ended, whatever their outcome, instead of being canceled when one
	// fails or is canceled (a clean-up, a report of a batch).
	RunAnyway bool `json:"run_anyway,omitempty"`
	// Batch makes a job the batch of its dependencies, the jobs of the
	// batch: while it waits, its Progress is theirs together (the mean of
	// their fractions, an ended job counting as 1), RequestCancel of it
	// cancels those that have not ended, and it runs once they have all
	// ended, whatever their outcome (RunAnyway is set), its handler
	// reading their outcomes through DependsOn: the batch's callback. A
	// batch of kind [BatchKind] has no callback: it ends by itself when
	// its jobs have, succeeded when they all did, failed otherwise, and
	// no job may depend on it (work that follows a batch is its
	// callback). A job belongs to one batch at most; a batch has at least
	// one job. See [Runner.EnqueueBatch].
	Batch bool `json:"batch,omitempty"`
	// CancelRequested is set when a running job was asked to cancel; the
	// worker that owns it stops and finishes it as canceled.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Duplicate is set by Create when a job with the same UniqueKey already
	// existed and was returned instead of a new one. It is never stored.
	// (The four booleans sit together: a Job stays within 512 bytes, the
	// largest allocation that needs no header of its own.)
	Duplicate bool `json:"duplicate,omitempty"`

	// RunAt is when the job may start, not before; the zero value means
	// now. It must lie in the years 1 to 9999 (UTC).
	RunAt      time.Time `json:"run_at"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`  // of the latest attempt
	FinishedAt time.Time `json:"finished_at,omitzero"` // set in terminal states

	// Lease: the worker that runs the job and until when, renewed by heartbeats.
	LeaseOwner     string    `json:"lease_owner,omitempty"`
	LeaseToken     string    `json:"-"`
	LeaseExpiresAt time.Time `json:"lease_expires_at,omitzero"`

	// Checkpoint is the state the latest attempt saved with
	// [Reporter.Checkpoint] (JSON), or nil. The next attempt of the job (a
	// retry, a rescue after its process died, a release at shutdown) starts
	// with it; read it with [Job.LoadCheckpoint].
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
	// OutputSeq is the number of the last item of the job's output (see
	// [Reporter.Append]); items are numbered from 1, and 0 means none.
	OutputSeq int64 `json:"output_seq,omitempty"`
}

// LoadCheckpoint decodes the job's checkpoint into v, which must be a
// pointer, and reports whether there was one: false leaves v unchanged (the
// job starts from the beginning). A checkpoint that does not decode into v
// is an [ErrInvalidArgument] error.
func (j *Job) LoadCheckpoint(v any) (bool, error) {
	if j.Checkpoint == nil {
		return false, nil
	}
	if err := json.Unmarshal(j.Checkpoint, v); err != nil {
		return false, &Error{Code: ErrInvalidArgument, Op: "load checkpoint", JobID: j.ID, Msg: "the checkpoint does not decode", Err: err}
	}
	return true, nil
}

// Lease returns the lease a worker names in its writes for this job. It is
// the zero Lease unless the job was returned by Claim.
func (j *Job) Lease() Lease { return Lease{JobID: j.ID, Token: j.LeaseToken} }

// Progress is how far a job has come: a fraction in [0, 1] and a short stage
// message such as "segment 3/10".
type Progress struct {
	Fraction float64 `json:"fraction"`
	Message  string  `json:"message,omitempty"`
}

// Validate returns an [ErrInvalidArgument] error when Fraction is NaN,
// infinite or outside [0, 1], or Message is longer than 1024 bytes, not
// UTF-8 or holds a NUL byte (which PostgreSQL cannot store).
func (p Progress) Validate() error {
	if math.IsNaN(p.Fraction) || math.IsInf(p.Fraction, 0) || p.Fraction < 0 || p.Fraction > 1 {
		return invalid("progress", "fraction %v is not in [0, 1]", p.Fraction)
	}
	if len(p.Message) > rules.MaxMessageLength {
		return invalid("progress", "message is %d bytes, over the limit of %d", len(p.Message), rules.MaxMessageLength)
	}
	if !utf8.ValidString(p.Message) || strings.IndexByte(p.Message, 0) >= 0 {
		return invalid("progress", "message is not valid UTF-8 without NUL")
	}
	return nil
}

// AttemptError records why one attempt failed.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// Lease names a claimed job and the token of the claim that owns it. Every
// write a worker makes is fenced by both: once the lease is lost, the writes
// match nothing and return [ErrLeaseLost].
type Lease struct {
	JobID uuid.UUID
	Token string
}

// Completion is the outcome of one attempt, passed to [JobRepository.Finish].
type Completion struct {
	Lease Lease
	// Status is StatusSucceeded, StatusFailed or StatusCanceled to end the
	// job, or StatusPending to retry it at RunAt.
	Status Status
	// Result is stored with StatusSucceeded; it must be valid JSON, or
	// empty or only JSON whitespace for no result.
	Result json.RawMessage
	// Error is the attempt's error, appended to the job's history unless
	// empty. Every repository stores it alike: each run of bytes that
	// are not valid UTF-8 and each NUL byte becomes U+FFFD, and the text
	// is cut on a rune boundary to at most 4096 bytes.
	Error string
	// RunAt is when a retried job may run again (StatusPending only); the
	// zero value means at once. It must lie in the years 1 to 9999 (UTC).
	RunAt time.Time
	// Progress, when not nil, is stored as the job's final progress. With
	// StatusSucceeded and a nil Progress, the fraction becomes 1 and the
	// message is kept.
	Progress *Progress
	// Output is appended to the job's output, numbered after its OutputSeq,
	// when the completion ends the job (as succeeded, failed or canceled,
	// also when a cancel request turns it into canceled), in the same
	// transaction: these are the items the attempt appended after its last
	// checkpoint. A retry (StatusPending) drops them: the next attempt
	// redoes that work from the checkpoint. Each item must be one valid JSON
	// value within the size limit of a payload.
	Output []json.RawMessage
}

// ProgressUpdate is what a running attempt reports, passed to
// [JobRepository.UpdateProgress]: its progress, and optionally a
// checkpoint with the output items it covers.
type ProgressUpdate struct {
	Lease    Lease
	Progress Progress
	// Checkpoint, when not nil, replaces the job's checkpoint, and Output
	// is appended to the job's output (numbered after its OutputSeq) in the
	// same transaction: a reader never sees items that no checkpoint or
	// outcome covers, so an attempt that redoes work after a crash never
	// repeats them. Output without a Checkpoint is invalid. The checkpoint
	// and each item must be one valid JSON value within the size limit of
	// a payload.
	Checkpoint json.RawMessage
	Output     []json.RawMessage
}

// OutputItem is one item of a job's output (see [Reporter.Append]).
type OutputItem struct {
	Seq  int64           `json:"seq"` // from 1, in the order of appending
	Data json.RawMessage `json:"data"`
}

// validJSON reports whether b is blank (see blankJSON) or one valid JSON value.
func validJSON(b []byte) bool {
	return blankJSON(b) || json.Valid(b)
}

// blankJSON reports whether b is empty or only JSON whitespace (space, tab,
// CR, LF): no value at all, which repositories store as a null payload or
// as no result.
func blankJSON(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}
