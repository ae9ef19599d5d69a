package jobs

import (
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// This file holds job metadata (Job.Metadata): the option that sets it,
// and the checks that every repository applies when a job is created.

// WithMetadata adds entries to the job's metadata ([Job].Metadata), a small
// map of strings stored with the job and handed, unchanged, to every
// attempt's handler (in its *Job) and to the [Hooks]: trace context, a
// request ID, a user ID. Several WithMetadata options merge, a later value
// winning for the same key; the map passed in is copied. The default is
// none. At most 32 entries, each key 1 to 128 bytes and each value at most
// 1024 bytes, both valid UTF-8 without NUL: more entries or longer keys or
// values are refused with [ErrTooLarge], an empty key or invalid text with
// [ErrInvalidArgument], and nothing is written.
func WithMetadata(m map[string]string) EnqueueOption {
	return func(c *enqueueConfig) {
		if len(m) == 0 {
			return
		}
		if c.job.Metadata == nil {
			c.job.Metadata = make(map[string]string, len(m))
		}
		maps.Copy(c.job.Metadata, m)
	}
}

// checkMetadata returns the error of metadata over the limits (ErrTooLarge)
// or malformed (ErrInvalidArgument), or nil. Keys are checked in order,
// so that the error names the same key on every call.
func checkMetadata(op string, m map[string]string) error {
	if len(m) > rules.MaxMetadataKeys {
		return newError(ErrTooLarge, op, uuid.Nil, "metadata has %d entries, over the limit of %d", len(m), rules.MaxMetadataKeys)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch {
		case k == "":
			return invalid(op, "metadata has an empty key")
		case len(k) > rules.MaxMetadataKey:
			return newError(ErrTooLarge, op, uuid.Nil, "metadata key is %d bytes, over the limit of %d", len(k), rules.MaxMetadataKey)
		case len(v) > rules.MaxMetadataValue:
			return newError(ErrTooLarge, op, uuid.Nil, "metadata value of %q is %d bytes, over the limit of %d", k, len(v), rules.MaxMetadataValue)
		case !utf8.ValidString(k) || rules.HasNUL(k):
			return invalid(op, "metadata key must be valid UTF-8 without NUL")
		case !utf8.ValidString(v) || rules.HasNUL(v):
			return invalid(op, "metadata value of %q must be valid UTF-8 without NUL", k)
		}
	}
	return nil
}

// cloneMetadata returns a copy of m, or nil when m is empty.
func cloneMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
