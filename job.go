package jobs

import (
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Status is where a job is in its life.
//
// The allowed transitions are:
//
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
	StatusPending   Status = "pending"   // waiting to run, possibly not before RunAt
	StatusRunning   Status = "running"   // claimed by a worker that holds its lease
	StatusSucceeded Status = "succeeded" // the handler returned a result
	StatusFailed    Status = "failed"    // attempts used up, or a permanent error
	StatusCanceled  Status = "canceled"  // canceled by a caller
)

// Valid reports whether s is one of the five statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Terminal reports whether s is succeeded, failed or canceled.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Limits on job fields, enforced by every repository in this module.
const (
	// MaxNameLength is the longest kind or queue name, in bytes.
	MaxNameLength = 128
	// MaxUniqueKeyLength is the longest unique key, in bytes.
	MaxUniqueKeyLength = 256
	// MaxMessageLength is the longest progress message, in bytes; longer
	// messages are refused by [Reporter] and repositories.
	MaxMessageLength = 1024
	// MaxErrorLength caps the stored text of one attempt's error; longer
	// texts are cut on a rune boundary (see [Completion].Error).
	MaxErrorLength = 4096
	// MaxErrorHistory is how many attempt errors a job keeps (the most recent).
	MaxErrorHistory = 100
	// DefaultQueue is the queue of a job created without one.
	DefaultQueue = "default"
	// DefaultMaxAttempts is the attempt limit of a job created with MaxAttempts 0.
	DefaultMaxAttempts = 3
)

// Job is one unit of work and everything known about it. Repositories return
// fresh copies: changing a Job changes nothing stored.
//
// To create a job, fill in Kind and Payload and, optionally, Queue, Priority,
// MaxAttempts, RunAt, Timeout and UniqueKey; the repository sets the rest.
type Job struct {
	bun.BaseModel `bun:"table:jobs" json:"-"`

	ID          uuid.UUID       `bun:"id,pk,type:uuid" json:"id"`
	Kind        string          `bun:"kind,notnull" json:"kind"`
	Queue       string          `bun:"queue,notnull" json:"queue"`
	Status      Status          `bun:"status,notnull" json:"status"`
	Priority    int             `bun:"priority,notnull" json:"priority"` // higher runs first within a queue; int32 range
	Payload     json.RawMessage `bun:"payload,type:json" json:"payload"`
	Result      json.RawMessage `bun:"result,type:json,nullzero" json:"result,omitempty"`
	Progress    Progress        `bun:"embed:progress_" json:"progress"`
	Error       string          `bun:"error,notnull" json:"error,omitempty"`            // the last attempt's error
	Errors      []AttemptError  `bun:"errors,type:json" json:"errors,omitempty"`        // recent attempt errors, oldest first
	Attempt     int             `bun:"attempt,notnull" json:"attempt"`                  // attempts started so far
	MaxAttempts int             `bun:"max_attempts,notnull" json:"max_attempts"`        // attempts allowed, at most math.MaxInt32
	Timeout     time.Duration   `bun:"timeout,notnull" json:"timeout,omitempty"`        // per attempt; 0: none
	UniqueKey   string          `bun:"unique_key,nullzero" json:"unique_key,omitempty"` // idempotency key
	// CancelRequested is set when a running job was asked to cancel; the
	// worker that owns it stops and finishes it as canceled.
	CancelRequested bool `bun:"cancel_requested,notnull" json:"cancel_requested,omitempty"`

	// RunAt is when the job may start, not before; the zero value means
	// now. It must lie in the years 1 to 9999 (UTC).
	RunAt      time.Time `bun:"run_at,notnull" json:"run_at"`
	CreatedAt  time.Time `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at,notnull" json:"updated_at"`
	StartedAt  time.Time `bun:"started_at,nullzero" json:"started_at,omitzero"`   // of the latest attempt
	FinishedAt time.Time `bun:"finished_at,nullzero" json:"finished_at,omitzero"` // set in terminal states

	// Lease: the worker that runs the job and until when, renewed by heartbeats.
	LeaseOwner     string    `bun:"lease_owner,nullzero" json:"lease_owner,omitempty"`
	LeaseToken     string    `bun:"lease_token,nullzero" json:"-"`
	LeaseExpiresAt time.Time `bun:"lease_expires_at,nullzero" json:"lease_expires_at,omitzero"`

	// Duplicate is set by Create when a job with the same UniqueKey already
	// existed and was returned instead of a new one. It is never stored.
	Duplicate bool `bun:"-" json:"duplicate,omitempty"`
}

// Lease returns the lease a worker names in its writes for this job. It is
// the zero Lease unless the job was returned by Claim.
func (j *Job) Lease() Lease { return Lease{JobID: j.ID, Token: j.LeaseToken} }

// Progress is how far a job has come: a fraction in [0, 1] and a short stage
// message such as "segment 3/10".
type Progress struct {
	Fraction float64 `bun:"fraction,notnull" json:"fraction"`
	Message  string  `bun:"message,notnull" json:"message,omitempty"`
}

// Validate returns an [ErrInvalidArgument] error when Fraction is NaN,
// infinite or outside [0, 1], or Message is longer than [MaxMessageLength],
// not UTF-8 or holds a NUL byte (which PostgreSQL cannot store).
func (p Progress) Validate() error {
	if math.IsNaN(p.Fraction) || math.IsInf(p.Fraction, 0) || p.Fraction < 0 || p.Fraction > 1 {
		return invalid("progress", "fraction %v is not in [0, 1]", p.Fraction)
	}
	if len(p.Message) > MaxMessageLength {
		return invalid("progress", "message is %d bytes, over the limit of %d", len(p.Message), MaxMessageLength)
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
	// is cut on a rune boundary to at most MaxErrorLength bytes.
	Error string
	// RunAt is when a retried job may run again (StatusPending only); the
	// zero value means at once. It must lie in the years 1 to 9999 (UTC).
	RunAt time.Time
	// Progress, when not nil, is stored as the job's final progress. With
	// StatusSucceeded and a nil Progress, the fraction becomes 1 and the
	// message is kept.
	Progress *Progress
}

// ProgressUpdate is one job's progress write, passed to
// [JobRepository.UpdateProgress].
type ProgressUpdate struct {
	Lease    Lease
	Progress Progress
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

// truncateError returns the text that every repository stores for an
// attempt's error s: each run of bytes that are not valid UTF-8 and each NUL
// byte becomes U+FFFD, as [cleanText] makes them, so that both databases can
// store it; the result is then cut on a rune boundary to at most
// MaxErrorLength bytes. An invalid byte early in a long error costs three
// bytes of the limit, not the rest of the text. It runs in time linear in
// len(s) and stops reading once the limit is reached.
func truncateError(s string) string {
	if len(s) <= MaxErrorLength && utf8.ValidString(s) && !hasNUL(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), MaxErrorLength))
	invalid := false // the previous byte belongs to an invalid sequence
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+n]
		switch {
		case r == utf8.RuneError && n == 1:
			if invalid {
				i++
				continue // one U+FFFD stands for the whole run
			}
			invalid, piece = true, "\uFFFD"
		case r == 0:
			invalid, piece = false, "\uFFFD"
		default:
			invalid = false
		}
		if b.Len()+len(piece) > MaxErrorLength {
			break
		}
		b.WriteString(piece)
		i += n
	}
	return b.String()
}
