// This is the project's copy of ../shared/bench-peers/c_jobs.go, which the
// run script uses instead of its own: it follows the library's API.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// Our own library, github.com/jobsmith/jobs (the project checkout, pointed at by the run script,
// wired with a go.mod replace), through its public API only:
//   - store: jobsqlite.Open (bun + sqliteshim = modernc.org/sqlite) with
//     WithSynchronous(-sqlite-sync), WithBusyTimeout(10s) and
//     WithMaxOpenConns(1), i.e. the same WAL / busy_timeout / _txlock=immediate
//     / synchronous / one-connection settings as the other SQLite contenders
//     (the library's own default pool is 4 connections and busy_timeout 5s);
//     jobspg.Open (bun pgdialect + pgx/v5 stdlib, library default pool of 16)
//     with a jobspg.Listener as the runner's Notifier (LISTEN/NOTIFY).
//     Both Open calls create or migrate the schema; on an existing store
//     (Attach) they find it current and change nothing.
//   - single insert: Runner.Enqueue; batch insert: Runner.EnqueueMany (one
//     repository Create = one transaction, multi-row INSERTs).
//   - workers: Runner.Run with WithConcurrency(-workers) and
//     WithPollInterval(-poll) (library default 1s). Everything else at the
//     library's defaults: refresh (cancel poll) 20ms, lease 30s (W7: -jobs-lease),
//     grace period 10s. Warnings and errors are logged to stderr (as River's
//     logger is), so W6 sees busy/lock messages.
//   - Remaining: the library has no count API short of Stats (GROUP BY queue,
//     kind, status over the whole table), so like the River/goqite/raw
//     contenders it counts rows of the library's table directly, through the
//     repository's own *bun.DB: count(*) of jobs whose status is not
//     'succeeded'.
//   - W5: Runner.Cancel on a second Runner (not running) over a second
//     repository on the same store. The cancel request is a durable
//     cancel_requested flag; the owning runner polls for it every 20 ms
//     (WithRefreshInterval default); on PostgreSQL a trigger also sends a
//     NOTIFY that the owner's Listener turns into an immediate cancel.
//   - W7: the job's lease (WithLeaseDuration, -jobs-lease, 1s in W7, the
//     library's minimum; default 30s). Heartbeats renew it every lease/3, every
//     running runner rescues expired leases every lease/4.

const jobsKind = "bench"

// defaultLease is the library's default lease (WithLeaseDuration's doc).
const defaultLease = 30 * time.Second

func init() {
	register(ContenderInfo{
		Name: "jobs-sqlite",
		Describe: "jobs (project checkout) Runner + jobsqlite.Open: bun + sqliteshim (=modernc.org/sqlite), file DB, WAL, " +
			"busy_timeout 10s, synchronous=-sqlite-sync via jobsqlite.WithSynchronous, 1 conn (WithMaxOpenConns(1); library default 4)",
		New: func() Contender { return &jobsContender{name: "jobs-sqlite"} },
	})
	register(ContenderInfo{
		Name:    "jobs-pg",
		NeedsPG: true,
		Describe: "jobs (project checkout) Runner + jobspg.Open: bun pgdialect + pgx/v5 stdlib pool (library default, max 16 conns), " +
			"jobspg.Listener as Notifier (LISTEN/NOTIFY)",
		New: func() Contender { return &jobsContender{name: "jobs-pg", pg: true} },
	})
}

type jobsContender struct {
	name   string
	pg     bool
	cfg    Config
	ref    string // SQLite file path or PostgreSQL URL (SharedStore)
	repo   *jobsbun.Repository
	runner *jobs.Runner
	h      atomic.Pointer[Handler]
	dropDB func() error

	cancel context.CancelFunc
	done   chan error
}

var (
	_ Contender      = (*jobsContender)(nil)
	_ Tracker        = (*jobsContender)(nil)
	_ Canceler       = (*jobsContender)(nil)
	_ SharedStore    = (*jobsContender)(nil)
	_ CrashRecoverer = (*jobsContender)(nil)
)

func (c *jobsContender) Name() string { return c.name }

func (c *jobsContender) Setup(ctx context.Context, cfg Config) error {
	ref := sqlitePath(cfg.TmpDir)
	if c.pg {
		dbURL, drop, err := pgFreshDB(ctx, cfg.PGURL, "jobs")
		if err != nil {
			return err
		}
		ref = dbURL
		c.dropDB = drop
	}
	// jobsqlite.Open / jobspg.Open create the schema on a fresh store.
	if err := c.Attach(ctx, cfg, ref); err != nil {
		if c.dropDB != nil {
			err = errors.Join(err, c.dropDB())
			c.dropDB = nil
		}
		return err
	}
	return nil
}

// Attach implements SharedStore: open an existing store (the Open calls find
// the schema current and change nothing) and build a Runner on it.
func (c *jobsContender) Attach(ctx context.Context, cfg Config, ref string) error {
	c.cfg, c.ref = cfg, ref
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	if c.pg {
		c.repo, err = jobspg.Open(ctx, ref)
	} else {
		c.repo, err = jobsqlite.Open(ctx, ref,
			jobsqlite.WithSynchronous(jobsqlite.Synchronous(cfg.SQLiteSync)),
			jobsqlite.WithBusyTimeout(10*time.Second),
			jobsqlite.WithMaxOpenConns(1))
	}
	if err != nil {
		return err
	}
	opts := []jobs.Option{
		jobs.WithConcurrency(max(1, cfg.Workers)),
		jobs.WithLogger(logger),
	}
	if cfg.Poll > 0 {
		opts = append(opts, jobs.WithPollInterval(cfg.Poll))
	}
	if cfg.JobsLease > 0 { // W7 only; 0 = library default (30s)
		opts = append(opts, jobs.WithLeaseDuration(cfg.JobsLease))
	}
	if c.pg {
		opts = append(opts, jobs.WithNotifier(jobspg.NewListener(c.repo.DB(), jobspg.WithListenerLogger(logger))))
	}
	c.runner, err = jobs.NewRunner(c.repo, opts...)
	if err != nil {
		return errors.Join(err, c.repo.Close())
	}
	c.runner.Handle(jobsKind, func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		var p Payload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return nil, jobs.Permanent(err)
		}
		if h := c.h.Load(); h != nil {
			(*h)(ctx, p)
		}
		// Non-nil only when the handler returned because its ctx ended
		// (W5: canceled); the runner then stores the job as canceled.
		return nil, ctx.Err()
	})
	return nil
}

func (c *jobsContender) StoreRef() string { return c.ref }

func (c *jobsContender) Enqueue(ctx context.Context, js []Payload) error {
	if len(js) == 1 {
		_, err := c.runner.Enqueue(ctx, jobsKind, js[0])
		return err
	}
	reqs := make([]jobs.EnqueueRequest, len(js))
	for i, p := range js {
		reqs[i] = jobs.EnqueueRequest{Kind: jobsKind, Payload: p}
	}
	out, err := c.runner.EnqueueMany(ctx, reqs...)
	if err == nil && len(out) != len(js) {
		err = fmt.Errorf("EnqueueMany returned %d jobs, want %d", len(out), len(js))
	}
	return err
}

func (c *jobsContender) Start(ctx context.Context, h Handler) error {
	c.h.Store(&h)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.done = make(chan error, 1)
	go func() { c.done <- c.runner.Run(runCtx) }()
	return nil
}

func (c *jobsContender) Remaining(ctx context.Context) (int, error) {
	var n int
	err := c.repo.DB().QueryRowContext(ctx, "SELECT count(*) FROM jobs WHERE status <> 'succeeded'").Scan(&n)
	return n, err
}

func (c *jobsContender) Stop(ctx context.Context) error {
	if c.cancel == nil {
		return nil
	}
	c.cancel() // Run drains gracefully (grace period 10s) and returns
	c.cancel = nil
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *jobsContender) Close() error {
	if c.cancel != nil {
		stopQuietly(c)
	}
	var errs []error
	if c.repo != nil {
		errs = append(errs, c.repo.Close()) // closes the DB too (Open uses WithCloseDB)
	}
	if c.dropDB != nil {
		errs = append(errs, c.dropDB())
	}
	return errors.Join(errs...)
}

// EnqueueOne implements Tracker (Runner.Enqueue returns the stored job).
func (c *jobsContender) EnqueueOne(ctx context.Context, p Payload) (string, error) {
	j, err := c.runner.Enqueue(ctx, jobsKind, p)
	if err != nil {
		return "", err
	}
	return j.ID.String(), nil
}

// JobState implements Tracker (Runner.Get): pending, running, succeeded,
// failed or canceled; "gone" once pruned.
func (c *jobsContender) JobState(ctx context.Context, id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", err
	}
	j, err := c.runner.Get(ctx, u)
	if errors.Is(err, jobs.ErrNotFound) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	return string(j.Status), nil
}

// CancelRunning implements Canceler (Runner.Cancel). W5 calls it on a second
// instance, whose Runner does not run the job, so the request travels through
// the store.
func (c *jobsContender) CancelRunning(ctx context.Context, id string) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return err
	}
	_, err = c.runner.Cancel(ctx, u)
	return err
}

func (c *jobsContender) CancelDelivery() string {
	if c.pg {
		return "cancel_requested flag (one UPDATE); trigger pg_notify -> owner's jobspg.Listener (LISTEN/NOTIFY) cancels the handler, " +
			"owner also polls the flag every 20 ms (WithRefreshInterval default)"
	}
	return "cancel_requested flag (one UPDATE), polled by the owning runner every 20 ms (WithRefreshInterval default)"
}

// RecoverySettings implements CrashRecoverer.
func (c *jobsContender) RecoverySettings(cfg Config) string {
	lease := cfg.JobsLease
	show := lease.String()
	if lease <= 0 {
		lease = defaultLease
		show = lease.String() + " (default)"
	}
	s := fmt.Sprintf("WithLeaseDuration=%s (library default %s, minimum %s): heartbeat every lease/3 (%s), "+
		"every running runner rescues expired leases every lease/4 (%s) and claims the requeued job at once (attempt counted, MaxAttempts=%d default), "+
		"PollInterval=%s",
		show, defaultLease, time.Second, lease/3, lease/4, 3, cfg.Poll)
	if c.pg {
		s += ", Listener (LISTEN/NOTIFY)"
	}
	return s
}
