package jobs

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
)

// Option configures a [Runner]; pass options to [NewRunner]. Options only
// record values: NewRunner validates them all at once and returns
// [ErrInvalidArgument] for an invalid one.
type Option func(*runnerConfig)

// Runner defaults and limits. They are not exported: the doc of each
// option states its default and valid range.
const (
	defaultConcurrency      = 8
	maxConcurrency          = 10000
	defaultLeaseDuration    = 30 * time.Second
	minLeaseDuration        = time.Second
	defaultPollInterval     = time.Second
	defaultRefreshInterval  = 20 * time.Millisecond
	defaultGracePeriod      = 10 * time.Second
	defaultStopTimeout      = 5 * time.Second
	defaultProgressInterval = 250 * time.Millisecond
	defaultRetention        = 7 * 24 * time.Hour
	defaultRetryBaseDelay   = time.Second
	defaultRetryMaxDelay    = time.Hour
)

type runnerConfig struct {
	concurrency  int
	queues       []string
	lease        time.Duration
	poll         time.Duration
	refresh      time.Duration
	grace        time.Duration
	stopTimeout  time.Duration
	progress     time.Duration
	retention    time.Duration
	retryBase    time.Duration
	retryMax     time.Duration
	owner        string
	logger       *slog.Logger
	hooks        []Hooks // in the order given; see hooks.go
	allowAnyKind bool
	loggerSet    bool
	notifier     Notifier // see notifier.go
	notifierSet  bool
	queueLimits  map[string]Limit // see limit.go
}

// WithConcurrency sets how many handlers run at once. The default is 8; n
// must be from 1 to 10000.
func WithConcurrency(n int) Option { return func(c *runnerConfig) { c.concurrency = n } }

// WithQueues limits the runner to jobs of the named queues. The default, no
// names, serves every queue; each name must be 1 to 128 bytes of valid UTF-8
// without NUL.
func WithQueues(names ...string) Option {
	return func(c *runnerConfig) { c.queues = append([]string(nil), names...) }
}

// WithLeaseDuration sets how long a claimed job stays leased without a
// heartbeat. The default is 30s; d must be at least 1s, with no upper limit.
// Heartbeats run every third of it, the rescuer of expired leases every
// quarter, so a dead process's jobs run again within about 1.5 leases
// (on SQLite through jobsbun, within about 0.1s of its death, whatever the
// lease: see the jobsbun package doc, Dead owners).
func WithLeaseDuration(d time.Duration) Option { return func(c *runnerConfig) { c.lease = d } }

// WithPollInterval sets how often an idle runner looks for jobs that other
// processes enqueued (jobs enqueued through the runner itself wake it at
// once). The default is 1s; d must be positive, with no upper limit.
func WithPollInterval(d time.Duration) Option { return func(c *runnerConfig) { c.poll = d } }

// WithRefreshInterval sets how often the runner re-reads what other
// processes change: every d the cancel requests for the jobs running here
// (one query, only while jobs run), and every 5·d each job of another
// process that [Runner.Watch] or [Runner.Await] follows (one read per
// job). A runner with a [Notifier] hears of most changes at once and
// refreshes only as the fallback. The default is 20ms, so a cancel made in
// another process stops the handler within about 20ms and watchers of
// other processes' jobs see changes within 100ms; d must be positive and
// at most the lease duration ([WithLeaseDuration]).
func WithRefreshInterval(d time.Duration) Option { return func(c *runnerConfig) { c.refresh = d } }

// WithShutdown sets how long Run's shutdown waits. When Run's context ends,
// Run waits up to grace for running handlers to return, then cancels the
// rest with cause [ErrClosed] (the runner is closing) and releases their
// jobs to pending; then it waits up to stop for handlers that ignore their
// context. Their jobs keep their leases, which expire, and Run returns an
// [ErrClosed] error.
//
// The defaults are 10s (grace) and 5s (stop). A zero duration leaves that
// one as it was (the default, or what an earlier WithShutdown set); a
// negative one is invalid; there is no upper limit. For a cancel almost at
// once, pass a grace of time.Nanosecond.
func WithShutdown(grace, stop time.Duration) Option {
	return func(c *runnerConfig) {
		if grace != 0 {
			c.grace = grace
		}
		if stop != 0 {
			c.stopTimeout = stop
		}
	}
}

// WithProgressInterval sets the least time between two progress writes of a
// job to the repository; in-process watchers see every report regardless.
// The default is 250ms; d must be positive, with no upper limit.
func WithProgressInterval(d time.Duration) Option {
	return func(c *runnerConfig) { c.progress = d }
}

// WithRetention sets how long finished jobs are kept: the pruner deletes
// older ones. The default is 7 days (168h); zero keeps them forever;
// negative is invalid.
func WithRetention(d time.Duration) Option { return func(c *runnerConfig) { c.retention = d } }

// WithRetryBackoff sets the exponential backoff between attempts: base before
// the second attempt, doubling up to max, each delay drawn at random from
// its upper half. The defaults are 1s (base) and 1h (max); both must be
// positive, and base at most max.
func WithRetryBackoff(base, max time.Duration) Option {
	return func(c *runnerConfig) { c.retryBase, c.retryMax = base, max }
}

// WithLogger sets the logger. The default logs nothing; any logger but nil
// is valid.
func WithLogger(l *slog.Logger) Option {
	return func(c *runnerConfig) { c.logger, c.loggerSet = l, true }
}

// WithHooks adds lifecycle callbacks; see [Hooks]. Several WithHooks add
// up: the callbacks of each run, in the order the options were given, so
// that a package such as jobsotel can add its own beside the
// application's. The default has none; any Hooks value is valid, and its
// nil fields are skipped.
func WithHooks(h Hooks) Option { return func(c *runnerConfig) { c.hooks = append(c.hooks, h) } }

// WithAllowUnknownKinds lets Enqueue create jobs of kinds that have no
// handler in this runner, for a process that runs some kinds and enqueues
// others that other processes run. It is off by default: a runner that has
// handlers refuses such an Enqueue with [ErrUnknownKind] (most often a
// misspelt kind). A runner with no handler at all needs no option: it is a
// producer, and enqueues any kind.
func WithAllowUnknownKinds() Option { return func(c *runnerConfig) { c.allowAnyKind = true } }

// newRunnerConfig applies the options over the defaults and validates them.
func newRunnerConfig(opts []Option) (runnerConfig, error) {
	c := runnerConfig{
		concurrency: defaultConcurrency,
		lease:       defaultLeaseDuration,
		poll:        defaultPollInterval,
		refresh:     defaultRefreshInterval,
		grace:       defaultGracePeriod,
		stopTimeout: defaultStopTimeout,
		progress:    defaultProgressInterval,
		retention:   defaultRetention,
		retryBase:   defaultRetryBaseDelay,
		retryMax:    defaultRetryMaxDelay,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	const op = "new runner"
	switch {
	case c.concurrency < 1 || c.concurrency > maxConcurrency:
		return c, invalid(op, "concurrency %d is not in [1, %d]", c.concurrency, maxConcurrency)
	case c.lease < minLeaseDuration:
		return c, invalid(op, "lease duration %v is under %v", c.lease, minLeaseDuration)
	case c.poll <= 0:
		return c, invalid(op, "poll interval %v is not positive", c.poll)
	case c.refresh <= 0 || c.refresh > c.lease:
		return c, invalid(op, "refresh interval %v is not in (0, lease]", c.refresh)
	case c.grace < 0:
		return c, invalid(op, "grace period %v is negative", c.grace)
	case c.stopTimeout < 0:
		return c, invalid(op, "stop timeout %v is negative", c.stopTimeout)
	case c.progress <= 0:
		return c, invalid(op, "progress interval %v is not positive", c.progress)
	case c.retention < 0:
		return c, invalid(op, "retention %v is negative", c.retention)
	case c.retryBase <= 0 || c.retryMax < c.retryBase:
		return c, invalid(op, "retry backoff base %v, max %v: need 0 < base ≤ max", c.retryBase, c.retryMax)
	case c.loggerSet && c.logger == nil:
		return c, invalid(op, "logger is nil")
	case c.notifierSet && c.notifier == nil:
		return c, invalid(op, "notifier is nil")
	}
	for _, q := range c.queues {
		if err := checkName(op, "queue", q, false); err != nil {
			return c, err
		}
	}
	if err := validateLimits(op, "queue", c.queueLimits); err != nil {
		return c, err
	}
	c.owner = defaultOwner()
	if err := checkName(op, "owner", c.owner, false); err != nil {
		return c, err
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// defaultOwner returns "host-pid-random".
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "runner"
	}
	if len(host) > 64 {
		host = host[:64]
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
}
