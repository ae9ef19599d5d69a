package jobsbun

import (
	"time"

	"github.com/jobsmith/jobs/internal/rules"
)

// Option configures [New].
type Option func(*config)

type config struct {
	maxPayload int
	busyRetry  time.Duration
	closeDB    bool
}

// defaultBusyRetry is the default of [WithBusyRetry].
const defaultBusyRetry = 30 * time.Second

// pruneBatch is the most rows Prune deletes in one transaction, so that
// pruning never holds the write lock for long.
const pruneBatch = 1000

// WithMaxPayloadBytes sets the size limit of a job's payload and of its
// result, in bytes: Create refuses a larger payload and Finish a larger
// result with [jobs.ErrTooLarge]. The limit applies alike to each
// checkpoint and each output item (UpdateProgress, Finish). Default 1 MiB (1 << 20); n must be at
// least 1.
func WithMaxPayloadBytes(n int) Option { return func(c *config) { c.maxPayload = n } }

// WithBusyRetry sets how long a write keeps retrying while SQLite reports
// the database as locked by another process (or PostgreSQL reports a
// serialization failure or deadlock) before it returns
// [jobs.ErrUnavailable]. Each SQLite try already waits for the connection's
// busy_timeout (jobsqlite.WithBusyTimeout). Default 30 s; d must be
// positive.
func WithBusyRetry(d time.Duration) Option { return func(c *config) { c.busyRetry = d } }

// WithCloseDB makes [Repository.Close] close the database too. It is for
// constructors that open the database on the caller's behalf, such as
// jobsqlite.Open and jobspg.Open; by default a repository never closes a
// database it was handed. A SQLite repository that owns its database
// also checkpoints its write-ahead log in the background until Close
// (jobsqlite.Open turns SQLite's checkpoints inside commits off).
func WithCloseDB() Option { return func(c *config) { c.closeDB = true } }

// newConfig applies the options over the defaults and validates them.
func newConfig(opts []Option) (config, error) {
	c := config{maxPayload: rules.MaxPayloadBytes, busyRetry: defaultBusyRetry}
	for _, o := range opts {
		o(&c)
	}
	if c.maxPayload < 1 {
		return c, invalid("new repository", "max payload bytes %d is not positive", c.maxPayload)
	}
	if c.busyRetry <= 0 {
		return c, invalid("new repository", "busy retry %v is not positive", c.busyRetry)
	}
	return c, nil
}
