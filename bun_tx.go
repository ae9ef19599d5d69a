package jobs

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/uptrace/bun"
)

// RunInTx runs fn in a transaction on db: it commits when fn returns nil and
// rolls back when fn returns an error or panics (the panic is then
// re-raised). When db is already a transaction, fn runs in a savepoint of
// it. Use it to enqueue jobs atomically with your own rows:
//
//	err := jobs.RunInTx(ctx, db, func(ctx context.Context, tx bun.Tx) error {
//		if _, err := tx.NewInsert().Model(&order).Exec(ctx); err != nil {
//			return err
//		}
//		return repo.CreateTx(ctx, tx, &jobs.Job{Kind: "ship", Payload: payload})
//	})
//
// On SQLite, open the database with _txlock=immediate (jobsqlite does), so
// that the transaction takes the write lock at BEGIN and never fails with
// SQLITE_BUSY half-way. RunInTx blocks until the transaction ends; it
// returns fn's error, or the error of BEGIN or COMMIT as returned by the
// driver.
func RunInTx(ctx context.Context, db bun.IDB, fn func(ctx context.Context, tx bun.Tx) error) error {
	return db.RunInTx(ctx, nil, fn)
}

// DefaultBusyTimeout is how long a write keeps retrying while SQLite
// reports the database as locked by another process before it gives up with
// [ErrUnavailable]. Each try already waits for the connection's
// busy_timeout.
const DefaultBusyTimeout = 30 * time.Second

// WithBusyTimeout sets how long a [BunRepository] write keeps retrying
// while SQLite reports the database as locked by another process (or
// PostgreSQL reports a serialization failure or deadlock) before it returns
// [ErrUnavailable]. The default is [DefaultBusyTimeout]; d must be positive.
// Other repositories ignore it.
func WithBusyTimeout(d time.Duration) RepositoryOption {
	return func(c *repoConfig) { c.busyTimeout = d }
}

// WithCloseDB makes [BunRepository.Close] close the database too. It is for
// constructors that open the database on the caller's behalf, such as
// jobsqlite.Open and jobspg.Open; by default a repository never closes a
// database it was handed. Other repositories ignore it.
func WithCloseDB() RepositoryOption {
	return func(c *repoConfig) { c.closeDB = true }
}

// writeGate serialises the writes of one repository on SQLite, which has a
// single writer: waiting here is fair and cheap, whereas waiting in SQLite's
// busy handler is neither. It is a 1-slot semaphore that honours ctx.
type writeGate chan struct{}

func (g writeGate) acquire(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g writeGate) release() {
	if g != nil {
		<-g
	}
}

// write runs fn as one write: in a transaction when tx is set, else as a
// single autocommit statement on the repository's database. On SQLite the
// write waits for the repository's write gate. When the database reports
// busy (another process holds the write lock), the whole write is retried
// with jittered backoff until ctx ends or the busy timeout passes; fn must
// therefore reset any results it collects on each call. Errors are
// translated with [storageError].
func (r *BunRepository) write(ctx context.Context, op string, tx bool, fn func(ctx context.Context, db bun.IDB) error) error {
	if r.closed.Load() {
		return newError(ErrClosed, op, [16]byte{}, "repository is closed")
	}
	return storageError(op, [16]byte{}, r.retryBusy(ctx, tx, fn))
}

// retryBusy is write without the closed check and the error translation.
func (r *BunRepository) retryBusy(ctx context.Context, tx bool, fn func(ctx context.Context, db bun.IDB) error) error {
	return r.retryWhileBusy(ctx, func() error { return r.writeOnce(ctx, tx, fn) })
}

// retryWhileBusy calls attempt until it returns nil or an error other than
// busy, ctx ends, or the busy timeout passes, waiting a jittered backoff
// between calls; it returns the last error.
func (r *BunRepository) retryWhileBusy(ctx context.Context, attempt func() error) error {
	start := time.Now()
	backoff := time.Millisecond
	for {
		err := attempt()
		if err == nil {
			return nil
		}
		if !isBusy(err) || ctx.Err() != nil || time.Since(start) > r.busyTimeout {
			return err
		}
		d := backoff/2 + rand.N(backoff)
		backoff = min(backoff*2, 100*time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func (r *BunRepository) writeOnce(ctx context.Context, tx bool, fn func(ctx context.Context, db bun.IDB) error) error {
	if err := r.gate.acquire(ctx); err != nil {
		return err
	}
	defer r.gate.release()
	if !tx {
		return fn(ctx, r.db)
	}
	return r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
}

// read checks that the repository is open; reads need no gate (WAL lets
// readers run beside the writer) and must not run in a transaction on
// SQLite (with _txlock=immediate it would take the write lock).
func (r *BunRepository) read(op string) error {
	if r.closed.Load() {
		return newError(ErrClosed, op, [16]byte{}, "repository is closed")
	}
	return nil
}
