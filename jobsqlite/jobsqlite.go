// Package jobsqlite opens a [jobsbun.Repository] on an SQLite file through
// bun's sqliteshim, which picks modernc.org/sqlite (pure Go) on common
// platforms and mattn/go-sqlite3 when built with -tags cgosqlite. [Open]
// is all most programs need; [OpenDB] opens the database alone, for
// programs that keep their own tables in it and enqueue jobs in their own
// transactions (pass it to jobsbun.New and use jobsbun.RunInTx).
//
// The database is opened in WAL mode with a busy timeout, foreign keys on,
// write transactions that take the write lock at BEGIN (_txlock=immediate),
// and the chosen synchronous level; the settings are read back after open
// and a database that did not apply them is refused with
// [jobs.ErrInvalidArgument] (each driver silently ignores the other's DSN
// keys).
//
// # Durability
//
// With [Normal] (the default), a commit survives a crash or kill -9 of the
// process, but the last commits before a power loss or an operating-system
// crash may be lost (the database stays consistent). With [Full] every
// commit is synced to disk before it returns, which costs several times
// more per commit (the README's benchmarks give the figures); the
// repository batches claims and completions, so the cost is per batch, not
// per job.
//
// WAL needs every process on one host and a local file system; use
// PostgreSQL (package jobspg) to run workers on several hosts.
package jobsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// Synchronous is SQLite's synchronous setting: how hard a commit waits for
// the disk.
type Synchronous string

// The synchronous levels this package offers.
const (
	// Normal syncs at WAL checkpoints: commits survive process crashes but
	// the last ones may be lost on power loss. The default.
	Normal Synchronous = "NORMAL"
	// Full syncs the WAL on every commit: commits survive power loss too.
	Full Synchronous = "FULL"
)

// DefaultBusyTimeout is the default time SQLite waits for another
// connection's write lock before reporting the database busy.
const DefaultBusyTimeout = 5 * time.Second

// DefaultMaxOpenConns is the default size of the connection pool. Writes are
// serialised by the repository, so one connection writes at a time; the
// others serve concurrent reads (WAL lets readers run beside the writer).
// Measured on 2 cores with 8 readers beside a claiming writer
// (BenchmarkSQLiteReadsDuringWrites): 1 connection served about 21 000
// reads/s, 2 about 30 000 and 4 about 34 000, while the writer kept going.
const DefaultMaxOpenConns = 4

// Option configures [Open] and [OpenDB].
type Option func(*config)

type config struct {
	sync         Synchronous
	busyTimeout  time.Duration
	maxOpenConns int
	repoOpts     []jobsbun.Option
}

// WithSynchronous sets the durability level, [Normal] (default) or [Full].
func WithSynchronous(s Synchronous) Option { return func(c *config) { c.sync = s } }

// WithBusyTimeout sets SQLite's busy_timeout: how long one statement waits
// for another connection's write lock. The default is [DefaultBusyTimeout];
// d must be at least 1 ms. The repository retries past it (see
// jobsbun.WithBusyRetry).
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithMaxOpenConns sets the size of the connection pool; the default is
// [DefaultMaxOpenConns], n must be at least 1.
func WithMaxOpenConns(n int) Option { return func(c *config) { c.maxOpenConns = n } }

// WithRepositoryOptions passes options to [jobsbun.New], such as
// jobsbun.WithMaxPayloadBytes. [OpenDB] refuses them with
// [jobs.ErrInvalidArgument]: it opens no repository.
func WithRepositoryOptions(opts ...jobsbun.Option) Option {
	return func(c *config) { c.repoOpts = append(c.repoOpts, opts...) }
}

func newConfig(opts []Option) (config, error) {
	c := config{sync: Normal, busyTimeout: DefaultBusyTimeout, maxOpenConns: DefaultMaxOpenConns}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.sync != Normal && c.sync != Full:
		return c, misuse("synchronous %q is not NORMAL or FULL", c.sync)
	case c.busyTimeout < time.Millisecond:
		return c, misuse("busy timeout %v is under 1ms", c.busyTimeout)
	case c.maxOpenConns < 1:
		return c, misuse("max open conns %d is under 1", c.maxOpenConns)
	}
	return c, nil
}

func misuse(format string, args ...any) error {
	return &jobs.Error{Code: jobs.ErrInvalidArgument, Op: "open sqlite", Msg: fmt.Sprintf(format, args...)}
}

// Open opens (creating if needed) the SQLite database at path, migrates the
// jobs schema and returns a repository whose Close also closes the database.
// path is a file path such as "data/jobs.db"; its directory is created when
// missing. In-memory databases are refused with [jobs.ErrInvalidArgument]:
// each pooled connection would see its own empty database. The repository
// checkpoints the write-ahead log in the background, until Close, so that
// no commit waits for a checkpoint (wal_autocheckpoint is 0 on its
// connections; [OpenDB] leaves SQLite's own checkpoints on).
//
// Open blocks while it opens and migrates. It returns
// [jobs.ErrInvalidArgument] for bad options or paths and when the driver
// did not apply the settings, and [jobs.ErrUnavailable] when the file
// cannot be opened.
func Open(ctx context.Context, path string, opts ...Option) (*jobsbun.Repository, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	// The repository owns the database and checkpoints its WAL in the
	// background (jobsbun's walcheckpoint.go), so that commits need not.
	db, err := openDB(ctx, path, c, true)
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

// OpenDB opens the SQLite database at path with the settings the library
// needs and checks them, for applications that keep their own tables in the
// same database and enqueue jobs in their own transactions (pass the result
// to jobsbun.New). The caller closes it. Errors are as for [Open].
func OpenDB(ctx context.Context, path string, opts ...Option) (*bun.DB, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if len(c.repoOpts) > 0 {
		return nil, misuse("repository options have no effect here: pass them to jobsbun.New")
	}
	return openDB(ctx, path, c, false)
}

// openDB is OpenDB with its options applied; with noAutoCheckpoint,
// commits leave the WAL's checkpoints to the repository.
func openDB(ctx context.Context, path string, c config, noAutoCheckpoint bool) (*bun.DB, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, &jobs.Error{Code: jobs.ErrUnavailable, Op: "open sqlite", Msg: "cannot create the database directory", Err: err}
		}
	}
	dsn := DSN(sqliteshim.DriverName(), path, c.sync, c.busyTimeout)
	if noAutoCheckpoint && sqliteshim.DriverName() == "sqlite" {
		dsn += "&_pragma=wal_autocheckpoint%280%29"
	}
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return nil, &jobs.Error{Code: jobs.ErrUnavailable, Op: "open sqlite", Msg: "cannot open the database", Err: err}
	}
	sqldb.SetMaxOpenConns(c.maxOpenConns)
	sqldb.SetMaxIdleConns(c.maxOpenConns)
	sqldb.SetConnMaxIdleTime(0)
	sqldb.SetConnMaxLifetime(0)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	if err := checkPragmas(ctx, db, c); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// connect opens one connection, trying again for up to the busy timeout
// while the database is locked: the first connections to a new file set
// it to WAL, and SQLite answers a connection that opens meanwhile, from
// another process or this one, with SQLITE_BUSY without waiting (several
// processes started together on a new file would otherwise fail to open
// it now and then).
func connect(ctx context.Context, db *bun.DB, busyTimeout time.Duration) (bun.Conn, error) {
	deadline := time.Now().Add(max(busyTimeout, time.Second))
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		conn, err := db.Conn(ctx)
		if err == nil || !locked(err) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return conn, err
		case <-time.After(wait):
		}
	}
}

// locked reports whether err is SQLITE_BUSY or SQLITE_LOCKED.
func locked(err error) bool {
	if c, ok := errors.AsType[interface {
		error
		Code() int
	}](err); ok {
		switch c.Code() & 0xff {
		case 5, 6:
			return true
		}
	}
	return strings.Contains(err.Error(), "database is locked")
}

// checkPath refuses in-memory databases and DSN syntax: path must name a
// file.
func checkPath(path string) error {
	p := strings.TrimPrefix(path, "file:")
	switch {
	case strings.TrimSpace(p) == "":
		return misuse("path is empty")
	case p == ":memory:" || strings.Contains(path, "mode=memory"):
		return misuse("in-memory databases are not supported: use a file (in tests, under t.TempDir())")
	case strings.ContainsAny(p, "?#"):
		return misuse("path %q must be a file path without URI parameters", path)
	}
	return nil
}

// DSN builds the data source name for the SQLite driver that sqliteshim
// picked (driver is sqliteshim.DriverName(): "sqlite" for modernc, "sqlite3"
// for mattn): WAL, the busy timeout, foreign keys, the synchronous level and
// _txlock=immediate, each in the syntax that driver understands.
func DSN(driver, path string, sync Synchronous, busy time.Duration) string {
	q := url.Values{}
	ms := busy.Milliseconds()
	if driver == "sqlite3" {
		q.Set("_busy_timeout", fmt.Sprint(ms))
		q.Set("_journal_mode", "WAL")
		q.Set("_foreign_keys", "1")
		q.Set("_synchronous", string(sync))
	} else {
		q["_pragma"] = []string{
			fmt.Sprintf("busy_timeout(%d)", ms),
			"journal_mode(WAL)",
			"foreign_keys(1)",
			fmt.Sprintf("synchronous(%s)", sync),
		}
	}
	q.Set("_txlock", "immediate")
	p := (&url.URL{Path: strings.TrimPrefix(path, "file:")}).EscapedPath()
	u := url.URL{Scheme: "file", Opaque: p, RawQuery: q.Encode()}
	return u.String()
}

// checkPragmas reads the settings back on one connection and refuses a
// database that did not apply them.
func checkPragmas(ctx context.Context, db *bun.DB, c config) error {
	conn, err := connect(ctx, db, c.busyTimeout)
	if err != nil {
		return &jobs.Error{Code: jobs.ErrUnavailable, Op: "open sqlite", Msg: "cannot connect", Err: err}
	}
	defer conn.Close()
	var busy int64
	var journal string
	var fk, sync int
	for _, p := range []struct {
		q    string
		dest any
	}{
		{"PRAGMA busy_timeout", &busy},
		{"PRAGMA journal_mode", &journal},
		{"PRAGMA foreign_keys", &fk},
		{"PRAGMA synchronous", &sync},
	} {
		if err := conn.QueryRowContext(ctx, p.q).Scan(p.dest); err != nil {
			return &jobs.Error{Code: jobs.ErrUnavailable, Op: "open sqlite", Msg: "cannot read " + p.q, Err: err}
		}
	}
	wantSync := 1
	if c.sync == Full {
		wantSync = 2
	}
	if busy != c.busyTimeout.Milliseconds() || !strings.EqualFold(journal, "wal") || fk != 1 || sync != wantSync {
		return &jobs.Error{Code: jobs.ErrInvalidArgument, Op: "open sqlite", Msg: fmt.Sprintf(
			"the driver did not apply the settings: busy_timeout=%d journal_mode=%s foreign_keys=%d synchronous=%d "+
				"(want %d, wal, 1, %d)", busy, journal, fk, sync, c.busyTimeout.Milliseconds(), wantSync)}
	}
	return nil
}
