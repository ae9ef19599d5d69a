package jobsbun

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/uptrace/bun"
)

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
// with jittered backoff until ctx ends or the busy retry ([WithBusyRetry])
// passes; fn must therefore reset any results it collects on each call.
// Errors are translated with [storageError].
func (r *Repository) write(ctx context.Context, op string, tx bool, fn func(ctx context.Context, db bun.IDB) error) error {
	if r.closed.Load() {
		return newError(jobs.ErrClosed, op, [16]byte{}, "repository is closed")
	}
	return storageError(op, [16]byte{}, r.retryBusy(ctx, tx, fn))
}

// retryBusy is write without the closed check and the error translation.
func (r *Repository) retryBusy(ctx context.Context, tx bool, fn func(ctx context.Context, db bun.IDB) error) error {
	return r.retryWhileBusy(ctx, func() error { return r.writeOnce(ctx, tx, fn) })
}

// retryWhileBusy calls attempt until it returns nil or an error other than
// busy, ctx ends, or the busy retry passes, waiting a jittered backoff
// between calls; it returns the last error.
func (r *Repository) retryWhileBusy(ctx context.Context, attempt func() error) error {
	start := time.Now()
	backoff := time.Millisecond
	for {
		err := attempt()
		if err == nil {
			r.wrote()
			return nil
		}
		if !isBusy(err) || ctx.Err() != nil || time.Since(start) > r.busyRetry {
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

func (r *Repository) writeOnce(ctx context.Context, tx bool, fn func(ctx context.Context, db bun.IDB) error) error {
	r.gateWaiting.Add(1)
	err := r.gate.acquire(ctx)
	r.gateWaiting.Add(-1)
	if err != nil {
		return err
	}
	defer r.gate.release()
	if r.d.sqlite() {
		// Take turns with the other processes on the file (writerlock_unix.go).
		if dir, err := r.ownersDir(ctx); err == nil {
			r.wlock.open(dir)
		}
		if r.wlock.acquire(ctx) {
			defer func() { r.wlock.release(r.gateWaiting.Load() > 0) }()
		}
	}
	if !tx {
		return fn(ctx, r.db)
	}
	return r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
}

// read checks that the repository is open; reads need no gate (WAL lets
// readers run beside the writer) and must not run in a transaction on
// SQLite (with _txlock=immediate it would take the write lock).
func (r *Repository) read(op string) error {
	if r.closed.Load() {
		return newError(jobs.ErrClosed, op, [16]byte{}, "repository is closed")
	}
	return nil
}
