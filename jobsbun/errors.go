package jobsbun

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// This file translates driver errors into the codes of the contract. This
// package imports no driver, so conditions are recognised by small
// interfaces that the drivers' error types implement (modernc's Code() int,
// pgx's SQLState() string) and, as a fallback, by their text.

// SQLite result codes (the primary code is the low byte of an extended code).
const (
	sqliteBusy     = 5
	sqliteLocked   = 6
	sqliteReadOnly = 8
	sqliteIOErr    = 10
	sqliteCorrupt  = 11
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// codedError is implemented by modernc's *sqlite.Error (an extended
// SQLite result code).
type codedError interface {
	error
	Code() int
}

// sqlStateError is implemented by pgx's *pgconn.PgError.
type sqlStateError interface {
	error
	SQLState() string
}

// storageError wraps a database error as a [*jobs.Error] of the right code, or
// returns err unchanged when it already is one (or is nil).
func storageError(op string, id uuid.UUID, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*jobs.Error](err); ok {
		return err
	}
	code := codeInternal
	msg := "storage error"
	switch {
	case errors.Is(err, sql.ErrNoRows):
		code, msg = jobs.ErrNotFound, "job not found"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code, msg = jobs.ErrUnavailable, rules.Interrupted
	case errors.Is(err, sql.ErrTxDone):
		// database/sql rolls a transaction back when the context it was
		// begun with ends; its statements and Commit then report ErrTxDone.
		code, msg = jobs.ErrUnavailable, "transaction was rolled back"
	case errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed"):
		code, msg = jobs.ErrClosed, "database is closed"
	case isBusy(err):
		code, msg = jobs.ErrUnavailable, "database is busy"
	case isUnavailable(err):
		code, msg = jobs.ErrUnavailable, "storage unavailable"
	case isBadInput(err):
		code, msg = jobs.ErrInvalidArgument, "value refused by the database"
	case isMissingSchema(err):
		code, msg = jobs.ErrInvalidArgument, "schema does not exist: check search_path"
	}
	return &jobs.Error{Code: code, Op: op, JobID: id, Msg: msg, Err: err}
}

// isBusy reports whether err means the database was locked by another
// writer, so retrying the whole operation is safe and may succeed.
func isBusy(err error) bool {
	if c, ok := errors.AsType[codedError](err); ok {
		switch c.Code() & 0xff {
		case sqliteBusy, sqliteLocked:
			return true
		}
	}
	if s, ok := errors.AsType[sqlStateError](err); ok {
		// serialization_failure, deadlock_detected, lock_not_available
		switch s.SQLState() {
		case "40001", "40P01", "55P03":
			return true
		}
	}
	t := err.Error()
	return strings.Contains(t, "database is locked") || strings.Contains(t, "SQLITE_BUSY") ||
		strings.Contains(t, "database table is locked")
}

// isUnavailable reports whether err means storage cannot serve requests for
// now: read-only, full, I/O errors, lost or refused connections.
func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	if c, ok := errors.AsType[codedError](err); ok {
		switch c.Code() & 0xff {
		case sqliteReadOnly, sqliteIOErr, sqliteCorrupt, sqliteFull, sqliteCantOpen:
			return true
		}
	}
	if s, ok := errors.AsType[sqlStateError](err); ok {
		st := s.SQLState()
		switch {
		case strings.HasPrefix(st, "08"), // connection exception
			strings.HasPrefix(st, "53"), // insufficient resources (disk full, out of memory)
			strings.HasPrefix(st, "57"), // operator intervention (shutdown, terminated)
			strings.HasPrefix(st, "58"), // system error (I/O)
			st == "25006":               // read-only transaction
			return true
		}
	}
	t := strings.ToLower(err.Error())
	for _, s := range []string{
		"readonly database", "read-only", "disk is full", "disk i/o error", "database disk image is malformed",
		"unable to open database", "connection refused", "connection reset", "broken pipe",
		"unexpected eof", "bad connection", "conn closed", "no such host", "i/o timeout",
		"terminating connection", "server closed the connection",
	} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// isMissingSchema reports whether err means that PostgreSQL found no schema
// to use: a search_path naming no existing schema (invalid_schema_name, which
// is also the code of "no schema has been selected to create in").
func isMissingSchema(err error) bool {
	s, ok := errors.AsType[sqlStateError](err)
	return ok && s.SQLState() == "3F000"
}

// isBadInput reports whether the database refused a value that passed our
// own checks (for example a JSON string with \u0000, which PostgreSQL's
// jsonb cannot store).
func isBadInput(err error) bool {
	if s, ok := errors.AsType[sqlStateError](err); ok {
		st := s.SQLState()
		return strings.HasPrefix(st, "22") || st == "23514"
	}
	return false
}

// codeInternal is the code of an error that fits no other code: a bug, or
// a database error this package does not classify. It is what
// [jobs.CodeOf] returns for errors that are not the module's own.
const codeInternal jobs.Code = "internal"

// newError builds a [*jobs.Error]; msg is formatted with args.
func newError(code jobs.Code, op string, id uuid.UUID, format string, args ...any) *jobs.Error {
	return &jobs.Error{Code: code, Op: op, JobID: id, Msg: fmt.Sprintf(format, args...)}
}

// invalid is shorthand for an [jobs.ErrInvalidArgument] error.
func invalid(op, format string, args ...any) *jobs.Error {
	return newError(jobs.ErrInvalidArgument, op, uuid.Nil, format, args...)
}

// refused turns a rule's message (see package rules) into an
// [jobs.ErrInvalidArgument] error, or nil for "".
func refused(op, msg string) error {
	if msg == "" {
		return nil
	}
	return invalid(op, "%s", msg)
}

// leaseLost is the error of a fenced-out write.
func leaseLost(op string, id uuid.UUID) *jobs.Error {
	return newError(jobs.ErrLeaseLost, op, id, rules.MsgLeaseLost)
}

// canceledInstead is the error of a completion that was stored as canceled
// instead of the status it asked for, because a cancel had been requested.
func canceledInstead(op string, id uuid.UUID, asked jobs.Status) *jobs.Error {
	return newError(jobs.ErrCanceled, op, id, "%s", rules.CanceledInstead(string(asked)))
}

// notFound is the error of an unknown ID.
func notFound(op string, id uuid.UUID) *jobs.Error {
	return newError(jobs.ErrNotFound, op, id, rules.MsgNotFound)
}
