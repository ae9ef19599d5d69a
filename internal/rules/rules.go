// Package rules holds the limits and text rules that every repository of
// this module applies alike: the memory repository in package jobs and the
// SQL repository in jobsbun call the same code, so they cannot drift. The
// rules that need the contract's types are methods of those types in
// package jobs (Job.Prepare, ClaimQuery.Validate, ListQuery.Page,
// Completion.Validate); this package holds the rest.
package rules

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits and defaults of job fields. Package jobs documents each where users
// meet it.
const (
	MaxNameLength      = 128     // longest kind, queue or owner name, in bytes
	MaxUniqueKeyLength = 256     // longest unique key, in bytes
	MaxMessageLength   = 1024    // longest progress message, in bytes
	MaxErrorLength     = 4096    // longest stored text of one attempt's error, in bytes
	MaxErrorHistory    = 100     // attempt errors a job keeps (the most recent)
	MaxPayloadBytes    = 1 << 20 // default limit of a payload and of a result
	DefaultQueue       = "default"
	DefaultMaxAttempts = 3
	DefaultListLimit   = 50
	MaxListLimit       = 1000
	MaxClaimLimit      = 1000  // most jobs one Claim or RescueExpired returns
	MaxOutputBatch     = 10000 // most output items one write appends for one job
	MaxOutputRead      = 1000  // most output items one ReadOutput returns
	MaxMetadataKeys    = 32    // most entries of a job's metadata
	MaxMetadataKey     = 128   // longest metadata key, in bytes
	MaxMetadataValue   = 1024  // longest metadata value, in bytes
)

// LeaseExpired is the attempt error recorded when a rescue requeues or fails
// a job whose lease ran out.
const LeaseExpired = "lease expired"

// OwnerDied is the attempt error recorded when a rescue requeues or fails a
// job because the process that held its lease is known to be dead (its
// owner lock was free), before the lease expired.
const OwnerDied = "owner died"

// Interrupted is the message of an unavailable error whose cause is the
// caller's context ending before the request reached storage.
const Interrupted = "storage request interrupted"

// Now is the repositories' clock: UTC, to the microsecond (the precision of
// PostgreSQL), without a monotonic reading, so stored times compare and
// print alike on every backend.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Name returns why s is not a valid kind, queue or owner name, or "" when
// it is. what names the field in the message; an empty s passes when emptyOK.
func Name(what, s string, emptyOK bool) string {
	switch {
	case s == "" && emptyOK:
		return ""
	case s == "":
		return what + " is empty"
	case len(s) > MaxNameLength:
		return fmt.Sprintf("%s is %d bytes, over the limit of %d", what, len(s), MaxNameLength)
	case !utf8.ValidString(s) || HasNUL(s):
		return what + " must be valid UTF-8 without NUL"
	}
	return ""
}

// HasNUL reports whether s holds a NUL byte, which PostgreSQL text refuses.
func HasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// CleanText makes s storable in a text column of either database: valid
// UTF-8 without NUL bytes.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if HasNUL(s) {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// ErrorText returns the text that every repository stores for an attempt's
// error s: each run of bytes that are not valid UTF-8 and each NUL byte
// becomes U+FFFD, as [CleanText] makes them, so that both databases can
// store it; the result is then cut on a rune boundary to at most
// MaxErrorLength bytes. An invalid byte early in a long error costs three
// bytes of the limit, not the rest of the text. It runs in time linear in
// len(s) and stops reading once the limit is reached.
func ErrorText(s string) string {
	if len(s) <= MaxErrorLength && utf8.ValidString(s) && !HasNUL(s) {
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

// Messages of errors that every repository returns alike.
const (
	MsgNotFound  = "job not found"
	MsgLeaseLost = "lease lost"
)

// CanceledInstead is the message of a completion or release stored as
// canceled, instead of the status asked for, because a cancel had been
// requested.
func CanceledInstead(asked string) string {
	return "a cancel was requested: stored as canceled, not " + asked
}

// LeaseDuration returns why d is not a valid lease duration, or "".
func LeaseDuration(d time.Duration) string {
	if d <= 0 {
		return fmt.Sprintf("lease duration %v is not positive", d)
	}
	return ""
}

// OutputRead returns why (after, limit) is not a valid ReadOutput range, or "".
func OutputRead(after int64, limit int) string {
	switch {
	case after < 0:
		return fmt.Sprintf("after %d is negative", after)
	case limit < 1 || limit > MaxOutputRead:
		return fmt.Sprintf("limit %d is not in [1, %d]", limit, MaxOutputRead)
	}
	return ""
}

// RescueLimit returns why n is not a valid limit of RescueExpired, or "".
func RescueLimit(n int) string {
	if n < 1 || n > MaxClaimLimit {
		return fmt.Sprintf("limit %d is not in [1, %d]", n, MaxClaimLimit)
	}
	return ""
}
