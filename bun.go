package jobs

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// BunRepository is the [JobRepository] on SQLite or PostgreSQL through bun.
// Create one with [NewBunRepository], or open one with jobsqlite.Open or
// jobspg.Open. It is safe for concurrent use, and several processes may
// share one database (on SQLite: one host, a local file system).
//
// All SQL is written with bun placeholders (every value is an argument, never
// concatenated) and scanned without reflection. On SQLite the repository
// serialises its own writes and retries while another process holds the
// write lock (see [WithBusyTimeout]).
type BunRepository struct {
	db          *bun.DB
	d           sqlDialect
	maxPayload  int
	busyTimeout time.Duration
	closeDB     bool
	gate        writeGate // SQLite only: one writer at a time
	stmts       stmtCache // SQLite only: prepared hot statements
	closed      atomic.Bool
}

var _ JobRepository = (*BunRepository)(nil)

// NewBunRepository returns a repository on db, creating or migrating the
// jobs schema first (tables jobs and jobs_schema_version). Migration is safe
// when several processes start at once. db must use the SQLite or the
// PostgreSQL dialect; on SQLite open it with WAL, a busy timeout and
// _txlock=immediate, as jobsqlite.OpenDB does.
//
// NewBunRepository blocks while it migrates. It returns [ErrInvalidArgument]
// for invalid options, [ErrMisconfigured] for another dialect or a schema
// newer than this library, and [ErrUnavailable] when the database cannot be
// reached. The repository does not close db unless [WithCloseDB] is given.
func NewBunRepository(ctx context.Context, db *bun.DB, opts ...RepositoryOption) (*BunRepository, error) {
	const op = "new repository"
	cfg, err := newRepoConfig(opts)
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
	r := &BunRepository{db: db, d: d, maxPayload: cfg.maxPayload, busyTimeout: cfg.busyTimeout, closeDB: cfg.closeDB}
	if d.sqlite() {
		r.gate = make(writeGate, 1)
	}
	r.stmts.db = db.DB
	if err := r.migrate(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// DB returns the database the repository works on, for callers that enqueue
// jobs inside their own transactions with [BunRepository.CreateTx].
func (r *BunRepository) DB() *bun.DB { return r.db }

// Close marks the repository closed: later calls return [ErrClosed]. It
// closes the database only when the repository was created with
// [WithCloseDB]. Close is idempotent and safe for concurrent use.
func (r *BunRepository) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.stmts.close()
	if !r.closeDB {
		return nil
	}
	if err := r.db.Close(); err != nil {
		return storageError("close", uuid.Nil, err)
	}
	return nil
}

// Create implements [JobRepository.Create]. It inserts the jobs with
// multi-row INSERT statements in one transaction.
func (r *BunRepository) Create(ctx context.Context, jobs ...*Job) error {
	return r.create(ctx, nil, jobs)
}

// CreateTx implements [JobRepository.CreateTx]: the jobs are inserted with
// tx and become visible when tx commits. tx may be a bun.Tx, a bun.Conn or
// a *bun.DB of the same database.
func (r *BunRepository) CreateTx(ctx context.Context, tx bun.IDB, jobs ...*Job) error {
	if tx == nil {
		return invalid("create", "tx is nil")
	}
	if db, ok := tx.(*bun.DB); ok && db == r.db {
		tx = nil
	}
	return r.create(ctx, tx, jobs)
}

// insertChunkRows and insertChunkBytes bound one INSERT statement.
const (
	insertChunkRows  = 1000
	insertChunkBytes = 4 << 20
)

func (r *BunRepository) create(ctx context.Context, idb bun.IDB, jobs []*Job) error {
	const op = "create"
	if r.closed.Load() {
		return newError(CodeClosed, op, uuid.Nil, "repository is closed")
	}
	if len(jobs) == 0 {
		return nil
	}
	saved := make([]Job, len(jobs))
	for i, j := range jobs {
		if j == nil {
			return invalid(op, "job %d is nil", i)
		}
		saved[i] = *j
	}
	restore := func() {
		for i, j := range jobs {
			*j = saved[i]
		}
	}
	t := now()
	for _, j := range jobs {
		if err := prepareNew(j, t, r.maxPayload); err != nil {
			restore()
			return err
		}
		j.RunAt = j.RunAt.Truncate(time.Microsecond)
	}
	chunks, anyKey := chunkJobs(jobs)
	// Several statements need a transaction to be all or nothing.
	multi := len(chunks) > 1 || anyKey
	var dups map[int]*Job
	fn := func(ctx context.Context, db bun.IDB) error {
		var err error
		dups, err = r.insert(ctx, db, jobs, chunks, anyKey)
		return err
	}
	var err error
	switch {
	case idb == nil && len(jobs) == 1 && !anyKey && r.d.bindsArgs():
		err = r.write(ctx, op, false, func(ctx context.Context, _ bun.IDB) error { return r.insertOneBound(ctx, jobs[0]) })
	case idb == nil:
		err = r.write(ctx, op, multi, fn)
	case multi:
		err = storageError(op, uuid.Nil, idb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) }))
	default:
		err = storageError(op, uuid.Nil, fn(ctx, idb))
	}
	if err != nil {
		restore()
		return err
	}
	for i, existing := range dups {
		*jobs[i] = *existing
		jobs[i].Duplicate = true
	}
	return nil
}

// chunkJobs splits jobs into index ranges [lo, hi) for INSERT statements and
// reports whether any job has a unique key.
func chunkJobs(jobs []*Job) (chunks [][2]int, anyKey bool) {
	lo, size := 0, 0
	for i, j := range jobs {
		anyKey = anyKey || j.UniqueKey != ""
		if i > lo && (i-lo >= insertChunkRows || size+len(j.Payload) > insertChunkBytes) {
			chunks = append(chunks, [2]int{lo, i})
			lo, size = i, 0
		}
		size += len(j.Payload) + 200
	}
	return append(chunks, [2]int{lo, len(jobs)}), anyKey
}

// insert writes the prepared jobs and returns, by index, the existing jobs
// that took the place of those whose unique key was already used.
func (r *BunRepository) insert(ctx context.Context, db bun.IDB, jobs []*Job, chunks [][2]int, anyKey bool) (map[int]*Job, error) {
	inserted, err := insertMultiRow(ctx, db, jobs, chunks, anyKey)
	if err != nil {
		return nil, err
	}
	if !anyKey || len(inserted) == len(jobs) {
		return nil, nil
	}
	var keys []string
	for _, j := range jobs {
		if !inserted[j.ID] {
			keys = append(keys, j.UniqueKey)
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE unique_key IN (?)", bun.List(keys))
	if err != nil {
		return nil, err
	}
	existing, err := scanJobs(rows)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]*Job, len(existing))
	for _, e := range existing {
		byKey[e.UniqueKey] = e
	}
	dups := make(map[int]*Job, len(keys))
	for i, j := range jobs {
		if inserted[j.ID] {
			continue
		}
		e := byKey[j.UniqueKey]
		if e == nil {
			return nil, newError(CodeInternal, "create", j.ID, "job with unique key vanished during create")
		}
		c := *e
		dups[i] = &c
	}
	return dups, nil
}

const insertColumns = "INSERT INTO jobs (id, kind, queue, priority, payload, max_attempts, timeout, unique_key, " +
	"run_at, created_at, updated_at) VALUES "

const onConflictKey = " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING"

// insertMultiRow inserts with one multi-row INSERT per chunk and returns the
// IDs it inserted when anyKey is set (nil otherwise).
func insertMultiRow(ctx context.Context, db bun.IDB, jobs []*Job, chunks [][2]int, anyKey bool) (map[uuid.UUID]bool, error) {
	var b strings.Builder
	var inserted map[uuid.UUID]bool
	if anyKey {
		inserted = make(map[uuid.UUID]bool, len(jobs))
	}
	for _, c := range chunks {
		b.Reset()
		args := make([]any, 0, 11*(c[1]-c[0]))
		b.WriteString(insertColumns)
		for i, j := range jobs[c[0]:c[1]] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, insertArgs(j)...)
		}
		if !anyKey {
			if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
				return nil, err
			}
			continue
		}
		b.WriteString(onConflictKey + " RETURNING id")
		rows, err := db.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			inserted[id] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// insertArgs are the values of one job for insertColumns.
func insertArgs(j *Job) []any {
	var key any
	if j.UniqueKey != "" {
		key = j.UniqueKey
	}
	return []any{j.ID.String(), j.Kind, j.Queue, j.Priority, string(j.Payload), j.MaxAttempts,
		int64(j.Timeout), key, j.RunAt, j.CreatedAt, j.UpdatedAt}
}

// Get implements [JobRepository.Get].
func (r *BunRepository) Get(ctx context.Context, id uuid.UUID) (*Job, error) {
	const op = "get"
	if err := r.read(op); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE id = ?", id.String())
	if err != nil {
		return nil, storageError(op, id, err)
	}
	js, err := scanJobs(rows)
	if err != nil {
		return nil, storageError(op, id, err)
	}
	if len(js) == 0 {
		return nil, notFound(op, id)
	}
	return js[0], nil
}

// List implements [JobRepository.List]. Pages follow the primary key
// downwards (IDs are UUIDv7, so newest first), never an OFFSET.
func (r *BunRepository) List(ctx context.Context, q ListQuery) (*Page, error) {
	const op = "list"
	if err := r.read(op); err != nil {
		return nil, err
	}
	limit, after, err := checkList(q)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	args := make([]any, 0, 5)
	b.WriteString("SELECT " + jobColumns + " FROM jobs WHERE TRUE")
	if len(q.Statuses) > 0 {
		st := make([]string, len(q.Statuses))
		for i, s := range q.Statuses {
			st[i] = string(s)
		}
		b.WriteString(" AND status IN (?)")
		args = append(args, bun.List(st))
	}
	if q.Kind != "" {
		b.WriteString(" AND kind = ?")
		args = append(args, q.Kind)
	}
	if q.Queue != "" {
		b.WriteString(" AND queue = ?")
		args = append(args, q.Queue)
	}
	if after != uuid.Nil {
		b.WriteString(" AND id < ?" + r.d.castUUID())
		args = append(args, after.String())
	}
	b.WriteString(" ORDER BY id DESC LIMIT ?")
	args = append(args, limit+1)
	rows, err := r.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	js, err := scanJobs(rows)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	p := &Page{Jobs: js}
	if len(js) > limit {
		p.Jobs = js[:limit]
		p.Next = js[limit-1].ID.String()
	}
	if p.Jobs == nil {
		p.Jobs = []*Job{}
	}
	return p, nil
}

// Stats implements [JobRepository.Stats] with one GROUP BY query.
func (r *BunRepository) Stats(ctx context.Context) (*Stats, error) {
	const op = "stats"
	if err := r.read(op); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT queue, kind, status, COUNT(*) FROM jobs GROUP BY queue, kind, status")
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	defer rows.Close()
	s := &Stats{ByStatus: map[Status]int{}, ByKind: map[string]map[Status]int{}, ByQueue: map[string]map[Status]int{}}
	for rows.Next() {
		var queue, kind, status string
		var n int
		if err := rows.Scan(&queue, &kind, &status, &n); err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		s.add(queue, kind, Status(status), n)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	return s, nil
}

// sortClaimed orders claimed jobs like the claim query: priority first,
// then RunAt, then ID (RETURNING gives no order).
func sortClaimed(js []*Job) {
	slices.SortFunc(js, func(a, b *Job) int {
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
func (r *BunRepository) migrate(ctx context.Context) error {
	return migrateSchema(ctx, r)
}
