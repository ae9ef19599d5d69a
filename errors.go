package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Code is a stable, machine-readable error category. Codes never change
// meaning between versions, so an HTTP layer can map them to status codes
// with one table.
type Code string

// The error codes. Each has a sentinel error of the same name with an Err
// prefix (CodeNotFound ↔ [ErrNotFound]).
const (
	CodeNotFound        Code = "not_found"        // no job with that ID
	CodeInvalidArgument Code = "invalid_argument" // bad input: kind, queue, payload, progress, options
	CodeTooLarge        Code = "too_large"        // payload or result over the size limit
	CodeConflict        Code = "conflict"         // the job's state does not allow the operation
	CodeUnknownKind     Code = "unknown_kind"     // no handler is registered for the kind
	CodeCanceled        Code = "canceled"         // the job was canceled
	CodeTimeout         Code = "timeout"          // the job ran past its timeout
	CodeFailed          Code = "failed"           // the job ended failed (see AwaitResult)
	CodeShutdown        Code = "shutdown"         // the runner stopped before the job finished
	CodeLeaseLost       Code = "lease_lost"       // the worker no longer owns the job
	CodeClosed          Code = "closed"           // the repository or runner is closed
	CodeUnavailable     Code = "unavailable"      // storage is busy, read-only, full or unreachable
	CodeMisconfigured   Code = "misconfigured"    // the database is not set up as the library requires
	CodeOutcomeUnknown  Code = "outcome_unknown"  // a write may or may not have been stored
	CodeInternal        Code = "internal"         // any error that is not an [*Error]
)

// Sentinel errors. Every error returned by this package that has one of these
// conditions matches the sentinel with [errors.Is], and [errors.As] with an
// [*Error] gives the operation, the job ID and the cause.
var (
	// ErrNotFound: no job has the given ID (it never existed or was pruned).
	ErrNotFound = &Error{Code: CodeNotFound}
	// ErrInvalidArgument: an argument was refused before anything was written.
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	// ErrTooLarge: a payload or result is larger than the configured limit.
	ErrTooLarge = &Error{Code: CodeTooLarge}
	// ErrConflict: the job's status does not allow the operation, such as
	// canceling a job that already finished. The stored job is unchanged.
	ErrConflict = &Error{Code: CodeConflict}
	// ErrUnknownKind: no handler is registered for the job's kind.
	ErrUnknownKind = &Error{Code: CodeUnknownKind}
	// ErrCanceled is the cause of a handler's context when its job was canceled.
	ErrCanceled = &Error{Code: CodeCanceled}
	// ErrTimeout is the cause of a handler's context when its job ran past its timeout.
	ErrTimeout = &Error{Code: CodeTimeout}
	// ErrFailed: the awaited job ended failed; the error's Msg has the job's
	// last error. Returned by [AwaitResult].
	ErrFailed = &Error{Code: CodeFailed}
	// ErrShutdown is the cause of a handler's context when the runner stopped
	// and the grace period ran out. The job is released, not failed.
	ErrShutdown = &Error{Code: CodeShutdown}
	// ErrLeaseLost: a worker's write was fenced out because its lease expired
	// and the job was rescued, finished or pruned. It is also the cause of a
	// handler's context when the runner can no longer renew the lease.
	ErrLeaseLost = &Error{Code: CodeLeaseLost}
	// ErrClosed: the repository or runner was closed.
	ErrClosed = &Error{Code: CodeClosed}
	// ErrUnavailable: storage could not serve the request (busy past its
	// retries, read-only, full, or unreachable). Retrying later may succeed.
	ErrUnavailable = &Error{Code: CodeUnavailable}
	// ErrMisconfigured: the database does not have the settings the library
	// needs (for example SQLite pragmas that the driver ignored, or a
	// PostgreSQL search_path that names no existing schema).
	ErrMisconfigured = &Error{Code: CodeMisconfigured}
	// ErrOutcomeUnknown: a write failed in a way that leaves open whether it
	// was stored (the connection to the database was lost, or the database
	// did not answer in time), and reading the jobs back could not settle
	// it: they may or may not exist. It is the only error of
	// [JobRepository.Create], [Runner.Enqueue] and [Runner.EnqueueMany]
	// after which something may have been stored. The safe response is to
	// retry with the same unique key ([WithUniqueKey], [Job].UniqueKey),
	// which returns the stored job with Duplicate set if the first try was
	// stored; without a unique key, a retry may create the job twice.
	ErrOutcomeUnknown = &Error{Code: CodeOutcomeUnknown}
)

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

// Is reports whether target is a sentinel of this package with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.Op != "" || t.JobID != uuid.Nil || t.Msg != "" || t.Err != nil {
		return false
	}
	return t.Code == e.Code
}

// CodeOf returns the code of the first [*Error] in err's tree, or
// [CodeInternal] when there is none. It returns "" for a nil error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// newError builds an [*Error]; msg is formatted with args.
func newError(code Code, op string, id uuid.UUID, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, JobID: id, Msg: fmt.Sprintf(format, args...)}
}

// ctxError is the error of a call that gave up because ctx ended before its
// request reached storage: [CodeUnavailable] with the message that
// [storageError] gives a storage request cut short by its context. It wraps
// ctx.Err(), so it matches context.Canceled or context.DeadlineExceeded
// with [errors.Is], and ctx's cause too when that is another error.
func ctxError(ctx context.Context, op string) *Error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return &Error{Code: CodeUnavailable, Op: op, Msg: ctxErrorMsg, Err: err}
}

// ctxErrorMsg is the message of an [*Error] for a context that ended.
const ctxErrorMsg = "storage request interrupted"

// invalid is shorthand for an [ErrInvalidArgument] error.
func invalid(op, format string, args ...any) *Error {
	return newError(CodeInvalidArgument, op, uuid.Nil, format, args...)
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
