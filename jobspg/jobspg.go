// Package jobspg opens a [jobsbun.Repository] on PostgreSQL through pgx
// (its database/sql adapter) and bun's PostgreSQL dialect, and provides the
// [Listener] that carries LISTEN/NOTIFY hints to runners. Many processes on
// many hosts may share one database: claims use FOR UPDATE SKIP LOCKED,
// leases use the database clock, and schema migration takes an advisory
// lock. [Open] is all most programs need; [OpenDB] opens the pool alone,
// for programs that keep their own tables in the database and enqueue jobs
// in their own transactions (pass it to jobsbun.New and use
// jobsbun.RunInTx).
//
// Triggers on the jobs table send LISTEN/NOTIFY hints when jobs are created,
// requeued, canceled or finished. A [Listener] receives them; pass it to
// jobs.WithNotifier so that a runner starts new work, stops canceled
// handlers and follows watched jobs at once instead of at its next poll:
//
//	repo, err := jobspg.Open(ctx, "postgres://app@db/app?sslmode=verify-full")
//	…
//	r, err := jobs.NewRunner(repo, jobs.WithNotifier(jobspg.NewListener(repo.DB())))
//
// Polling stays the source of truth: notifications missed while the
// listener reconnects are covered by it.
package jobspg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// ApplicationName is the application_name of the connections this package
// opens unless the URL sets one, so that operators (and tests) can find them
// in pg_stat_activity.
const ApplicationName = "jobs"

// Pool defaults.
const (
	// DefaultMaxOpenConns is the default size of the connection pool.
	DefaultMaxOpenConns = 16
	// DefaultConnMaxIdleTime is how long an idle connection is kept.
	DefaultConnMaxIdleTime = 5 * time.Minute
	// DefaultConnMaxLifetime is how long a connection is used before it is
	// replaced, so that a pool follows failovers and DNS changes.
	DefaultConnMaxLifetime = 30 * time.Minute
	// DefaultConnectTimeout bounds each connection attempt unless the URL
	// sets connect_timeout, so that an unreachable server is reported as
	// ErrUnavailable instead of hanging on the operating system's timeout.
	DefaultConnectTimeout = 10 * time.Second
)

// Option configures [Open] and [OpenDB].
type Option func(*config)

type config struct {
	maxOpenConns int
	repoOpts     []jobsbun.Option
}

// WithMaxOpenConns sets the size of the connection pool; the default is
// [DefaultMaxOpenConns], n must be at least 1. A [Listener] connects
// besides the pool, so 1 is enough for a runner that listens.
func WithMaxOpenConns(n int) Option { return func(c *config) { c.maxOpenConns = n } }

// WithRepositoryOptions passes options to [jobsbun.New], such as
// jobsbun.WithMaxPayloadBytes. [OpenDB] refuses them with
// [jobs.ErrInvalidArgument]: it opens no repository.
func WithRepositoryOptions(opts ...jobsbun.Option) Option {
	return func(c *config) { c.repoOpts = append(c.repoOpts, opts...) }
}

func newConfig(opts []Option) (config, error) {
	c := config{maxOpenConns: DefaultMaxOpenConns}
	for _, o := range opts {
		o(&c)
	}
	if c.maxOpenConns < 1 {
		return c, &jobs.Error{Code: jobs.ErrInvalidArgument, Op: "open postgres",
			Msg: fmt.Sprintf("max open conns %d is under 1", c.maxOpenConns)}
	}
	return c, nil
}

// Open connects to the PostgreSQL database at url (postgres://user@host/db?…;
// runtime parameters such as search_path may be given in the query), migrates
// the jobs schema and returns a repository whose Close also closes the pool.
//
// Open blocks while it connects and migrates. It returns
// [jobs.ErrInvalidArgument] for a malformed URL, bad options or a
// search_path that names no existing schema, and [jobs.ErrUnavailable]
// when the server cannot be reached.
func Open(ctx context.Context, url string, opts ...Option) (*jobsbun.Repository, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	db, err := openDB(ctx, url, c)
	if err != nil {
		return nil, err
	}
	repo, err := jobsbun.New(ctx, db, append(c.repoOpts, jobsbun.WithCloseDB())...)
	if err != nil {
		db.Close()
		return nil, err
	}
	return repo, nil
}

// OpenDB connects to the PostgreSQL database at url with the pool settings
// of this package and checks the connection, for applications that keep
// their own tables in the same database (pass the result to
// jobsbun.New). The caller closes it. Errors are as for [Open].
func OpenDB(ctx context.Context, url string, opts ...Option) (*bun.DB, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if len(c.repoOpts) > 0 {
		return nil, &jobs.Error{Code: jobs.ErrInvalidArgument, Op: "open postgres", Msg: "repository options have no effect here: pass them to jobsbun.New"}
	}
	return openDB(ctx, url, c)
}

// openDB is OpenDB with its options applied.
func openDB(ctx context.Context, url string, c config) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, &jobs.Error{Code: jobs.ErrInvalidArgument, Op: "open postgres", Msg: "malformed database URL", Err: err}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	// bun formats every value into the SQL text, so no two statements are
	// alike: pgx's default statement cache would prepare each one (an extra
	// round trip) and evict the others. Send them as they are instead.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(c.maxOpenConns)
	sqldb.SetMaxIdleConns(c.maxOpenConns)
	sqldb.SetConnMaxIdleTime(DefaultConnMaxIdleTime)
	sqldb.SetConnMaxLifetime(DefaultConnMaxLifetime)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, &jobs.Error{Code: jobs.ErrUnavailable, Op: "open postgres", Msg: "cannot connect", Err: err}
	}
	return bun.NewDB(sqldb, pgdialect.New()), nil
}
