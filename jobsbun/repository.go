package jobsbun

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Repository is the [jobs.JobRepository] on SQLite or PostgreSQL through bun.
// Create one with [New], or open one with jobsqlite.Open or
// jobspg.Open. It is safe for concurrent use, and several processes may
// share one database (on SQLite: one host, a local file system). It is
// also a [jobs.Notifier] for the runners of this process (see
// [Repository.Subscribe]).
//
// Every value travels as a placeholder argument, never concatenated into
// SQL: bun formats it, except on SQLite's hottest statements (Create
// without unique keys, Claim, the batch writes of workers, ReadOutput), which are
// prepared once and bound by the driver, and therefore bypass bun's query
// hooks. Rows are scanned without reflection. On SQLite the repository
// serialises its own writes and retries while another process holds the
// write lock (see [WithBusyRetry]).
type Repository struct {
	db          *bun.DB
	d           sqlDialect
	maxPayload  int
	busyRetry   time.Duration
	writeGrace  time.Duration // see confirm.go
	closeDB     bool
	gate        writeGate    // SQLite only: one writer at a time
	wlock       writerLock   // SQLite only: turns between processes (writerlock_unix.go)
	gateWaiting atomic.Int32 // writes waiting at gate
	stmts       stmtCache    // SQLite only: prepared hot statements
	closed      atomic.Bool
	commits     commitFeed // runners of this process woken by RunInTx commits
	owners      ownerLocks // see owners.go, owners_pg.go
	life        context.Context
	endLife     context.CancelFunc // at Close

	// SQLite only: the background checkpoints of the WAL (walcheckpoint.go).
	walWrites atomic.Uint64
	walKick   chan struct{}
	walDone   chan struct{}
}

var (
	_ jobs.JobRepository = (*Repository)(nil)
	_ jobs.Notifier      = (*Repository)(nil)
)

// New returns a repository on db, creating or migrating the
// jobs schema first (tables jobs and jobs_schema_version). Migration is safe
// when several processes start at once. db must use the SQLite or the
// PostgreSQL dialect; on SQLite open it with WAL, a busy timeout and
// _txlock=immediate, as jobsqlite.OpenDB does.
//
// New blocks while it migrates. It returns [jobs.ErrInvalidArgument] for
// invalid options, a nil db, another dialect or a schema newer than this
// library, and [jobs.ErrUnavailable] when the database cannot be reached. The repository does not close db unless [WithCloseDB] is given.
func New(ctx context.Context, db *bun.DB, opts ...Option) (*Repository, error) {
	const op = "new repository"
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, invalid(op, "db is nil")
	}
	d, err := newSQLDialect(db)
	if err != nil {
		return nil, err
	}
	r := &Repository{db: db, d: d, maxPayload: cfg.maxPayload, busyRetry: cfg.busyRetry,
		writeGrace: defaultWriteGrace, closeDB: cfg.closeDB}
	r.life, r.endLife = context.WithCancel(context.Background())
	if d.sqlite() {
		r.gate = make(writeGate, 1)
	}
	r.stmts.db = db.DB
	if err := r.migrate(ctx); err != nil {
		return nil, err
	}
	if d.sqlite() && cfg.closeDB {
		// A repository that owns its database checkpoints it
		// (walcheckpoint.go); Close stops that.
		r.walKick, r.walDone = make(chan struct{}, 1), make(chan struct{})
		go r.checkpointWAL(r.life)
	}
	return r, nil
}

// DB returns the database the repository works on, for callers that enqueue
// jobs inside their own transactions with [Repository.CreateTx].
func (r *Repository) DB() *bun.DB { return r.db }

// Close marks the repository closed: later calls return [jobs.ErrClosed],
// and owner locks held on PostgreSQL are let go. It closes the database
// only when the repository was created with [WithCloseDB]. Close is idempotent and safe for concurrent use.
func (r *Repository) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.endLife() // owner locks go with the repository (owners_pg.go)
	if r.walDone != nil {
		<-r.walDone
	}
	r.stmts.close()
	r.wlock.close()
	if !r.closeDB {
		return nil
	}
	if err := r.db.Close(); err != nil {
		return storageError("close", uuid.Nil, err)
	}
	return nil
}

// Get implements [jobs.JobRepository.Get].
func (r *Repository) Get(ctx context.Context, id uuid.UUID) (*jobs.Job, error) {
	const op = "get"
	if err := r.read(op); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT "+r.d.jobColumns()+" FROM jobs WHERE id = ?", id.String())
	if err != nil {
		return nil, storageError(op, id, err)
	}
	js, err := scanJobs(rows)
	if err == nil {
		err = r.withDeps(ctx, r.db, js) // deps.go
	}
	if err != nil {
		return nil, storageError(op, id, err)
	}
	if len(js) == 0 {
		return nil, notFound(op, id)
	}
	return js[0], nil
}

// List implements [jobs.JobRepository.List]. Pages follow the primary key
// downwards (IDs are UUIDv7, so newest first), never an OFFSET; filters by
// status or kind read index ranges (listSQL, list.go).
func (r *Repository) List(ctx context.Context, q jobs.ListQuery) (*jobs.Page, error) {
	const op = "list"
	if err := r.read(op); err != nil {
		return nil, err
	}
	limit, after, err := q.Page()
	if err != nil {
		return nil, err
	}
	var ranges []listRange
	if statuses := listStatuses(q); statuses != nil { // list.go
		rs, ok, err := r.listRanges(ctx, q, statuses)
		if err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		if ok {
			ranges = rs
		}
	}
	query, args := r.listSQL(q, limit, after, ranges)
	if query == "" {
		return &jobs.Page{Jobs: []*jobs.Job{}}, nil
	}
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	js, err := scanJobs(rows)
	if err == nil {
		err = r.withDeps(ctx, r.db, js)
	}
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	p := &jobs.Page{Jobs: js}
	if len(js) > limit {
		p.Jobs = js[:limit]
		p.Next = js[limit-1].ID.String()
	}
	if p.Jobs == nil {
		p.Jobs = []*jobs.Job{}
	}
	return p, nil
}

// sortClaimed orders claimed jobs like the claim query: priority first,
// then RunAt, then ID (RETURNING gives no order).
func sortClaimed(js []*jobs.Job) {
	slices.SortFunc(js, func(a, b *jobs.Job) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
}

// migrate creates or upgrades the schema.
func (r *Repository) migrate(ctx context.Context) error {
	return migrateSchema(ctx, r)
}
