package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// Code is a stable, machine-readable error category, and the sentinel error
// of that category: every error this module returns for a condition below
// matches its code with [errors.Is] (errors.Is(err, jobs.ErrNotFound)), and
// [CodeOf] gives the code to put in an API response. Codes never change
// meaning between versions, so an HTTP layer maps them to status codes with
// one table. [errors.As] with an [*Error] gives the operation, the job ID and
// the cause.
type Code string

// Error returns "jobs: " and the code in words, such as "jobs: not found".
func (c Code) Error() string { return "jobs: " + strings.ReplaceAll(string(c), "_", " ") }

// The codes.
const (
	// ErrNotFound: no job has the given ID (it never existed or was pruned).
	ErrNotFound Code = "not_found"
	// ErrInvalidArgument: an argument was refused before anything was
	// written, or a database handed to a constructor lacks the settings the
	// library needs (SQLite pragmas that the driver ignored, a PostgreSQL
	// search_path that names no existing schema).
	ErrInvalidArgument Code = "invalid_argument"
	// ErrTooLarge: a payload or result is larger than the configured limit.
	ErrTooLarge Code = "too_large"
	// ErrConflict: the job's status does not allow the operation, such as
	// canceling a job that already finished. The stored job is unchanged.
	ErrConflict Code = "conflict"
	// ErrUnknownKind: no handler is registered for the job's kind.
	ErrUnknownKind Code = "unknown_kind"
	// ErrCanceled is the cause of a handler's context when its job was canceled.
	ErrCanceled Code = "canceled"
	// ErrTimeout is the cause of a handler's context when its job ran past its timeout.
	ErrTimeout Code = "timeout"
	// ErrFailed: the awaited job ended failed; the error's Msg has the job's
	// last error. Returned by [AwaitResult].
	ErrFailed Code = "failed"
	// ErrLeaseLost: a worker's write was fenced out because its lease expired
	// and the job was rescued, finished or pruned. It is also the cause of a
	// handler's context when the runner can no longer renew the lease.
	ErrLeaseLost Code = "lease_lost"
	// ErrClosed: the repository was closed, or the runner is closing. It is
	// the cause of a handler's context when [Runner.Run] shuts down and the
	// grace period ran out (the job is released, not failed), and the code
	// of Run's error when handlers did not return even after that cancel.
	ErrClosed Code = "closed"
	// ErrUnavailable: storage could not serve the request (busy past its
	// retries, read-only, full, or unreachable), or the caller's context
	// ended first (then the error also matches ctx.Err()). Retrying later
	// may succeed.
	ErrUnavailable Code = "unavailable"
	// ErrOutcomeUnknown: a write failed in a way that leaves open whether it
	// was stored (the connection to the database was lost, or the database
	// did not answer in time), and reading the jobs back could not settle
	// it: they may or may not exist. It is the only error of
	// [JobRepository.Create], [Runner.Enqueue] and [Runner.EnqueueMany]
	// after which something may have been stored. The safe response is to
	// retry with the same unique key ([WithUniqueKey], [Job].UniqueKey),
	// which returns the stored job with Duplicate set if the first try was
	// stored; without a unique key, a retry may create the job twice.
	ErrOutcomeUnknown Code = "outcome_unknown"
)

// codeInternal is what [CodeOf] returns for an error that is not this
// module's: "internal".
const codeInternal Code = "internal"

// Error is the structured error of this package. Its Code is stable; Op, JobID
// and Msg say what happened; Err is the underlying cause, if any.
//
// Use [errors.Is] with a sentinel to branch on the condition
// (errors.Is(err, jobs.ErrNotFound)) and [errors.As] to read the details.
type Error struct {
	Code  Code      // stable category
	Op    string    // operation, such as "get" or "claim"
	JobID uuid.UUID // the job concerned, or uuid.Nil
	Msg   string    // human-readable detail, safe to show to users
	Err   error     // underlying cause, if any; may hold driver text
}

// Error returns "jobs: op job-id: msg: cause", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jobs: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		if e.JobID != uuid.Nil {
			b.WriteString(" ")
			b.WriteString(e.JobID.String())
		}
		b.WriteString(": ")
	}
	if e.Msg != "" {
		b.WriteString(e.Msg)
	} else {
		b.WriteString(strings.ReplaceAll(string(e.Code), "_", " "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's code, so that errors.Is(err,
// jobs.ErrNotFound) holds for every not-found error.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// CodeOf returns the code of the first [*Error] or [Code] in err's tree, or
// the code "internal" when there is none (an error that is not this
// module's: a bug, or a cause it does not classify). It returns "" for a nil
// error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if c, ok := errors.AsType[Code](err); ok {
		return c
	}
	return codeInternal
}

// newError builds an [*Error]; msg is formatted with args.
func newError(code Code, op string, id uuid.UUID, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, JobID: id, Msg: fmt.Sprintf(format, args...)}
}

// ctxError is the error of a call that gave up because ctx ended before its
// request reached storage: [ErrUnavailable] with the message that
// [storageError] gives a storage request cut short by its context. It wraps
// ctx.Err(), so it matches context.Canceled or context.DeadlineExceeded
// with [errors.Is], and ctx's cause too when that is another error.
func ctxError(ctx context.Context, op string) *Error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return &Error{Code: ErrUnavailable, Op: op, Msg: rules.Interrupted, Err: err}
}

// invalid is shorthand for an [ErrInvalidArgument] error.
func invalid(op, format string, args ...any) *Error {
	return newError(ErrInvalidArgument, op, uuid.Nil, format, args...)
}

// Permanent marks a handler error as not worth retrying: the job fails at
// once, whatever attempts remain. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryAfter asks for the next attempt to start after d instead of after the
// computed backoff. When no attempts remain the job fails as usual. A negative
// d counts as zero. RetryAfter(d, nil) returns nil.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{delay: max(d, 0), err: err}
}

type retryAfterError struct {
	delay time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// splitErrors sorts the error of a batch call into the errors of single
// jobs (an [*Error] with a JobID) and the rest, joined.
func splitErrors(err error) (map[uuid.UUID]error, error) {
	if err == nil {
		return nil, nil
	}
	perJob := map[uuid.UUID]error{}
	var other []error
	for _, e := range flatten(err, nil) {
		if je, ok := errors.AsType[*Error](e); ok && je.JobID != uuid.Nil {
			perJob[je.JobID] = e
			continue
		}
		other = append(other, e)
	}
	return perJob, errors.Join(other...)
}

// flatten appends the errors joined in err (at any depth of errors.Join)
// to out.
func flatten(err error, out []error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = flatten(e, out)
		}
		return out
	}
	return append(out, err)
}
