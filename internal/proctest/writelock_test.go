package proctest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// writeLock is the test process's own hold on the database's write lock:
// one connection that takes it, and another that checks its effect.
type writeLock struct {
	backend string
	mode    string  // PostgreSQL's LOCK TABLE mode
	db      *bun.DB // one connection: holds the lock
	probe   *bun.DB // one connection: tries a write and a read meanwhile
}

// newWriteLock opens the two connections and creates outage_probe, the
// table each hold writes a row to.
func newWriteLock(t testing.TB, c *cluster, mode string) *writeLock {
	t.Helper()
	ctx := t.Context()
	w := &writeLock{backend: c.cfg.Backend, mode: mode}
	var err error
	switch w.backend {
	case "sqlite":
		w.db, err = jobsqlite.OpenDB(ctx, c.cfg.URL, jobsqlite.WithMaxOpenConns(1))
		require.NoError(t, err)
		// A write of the probe fails at once while the lock is held.
		w.probe, err = jobsqlite.OpenDB(ctx, c.cfg.URL, jobsqlite.WithMaxOpenConns(1),
			jobsqlite.WithBusyTimeout(time.Millisecond))
	case "postgres":
		w.db, err = jobspg.OpenDB(ctx, c.cfg.URL, jobspg.WithMaxOpenConns(1))
		require.NoError(t, err)
		w.probe, err = jobspg.OpenDB(ctx, c.cfg.URL, jobspg.WithMaxOpenConns(1))
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = w.db.Close()
		_ = w.probe.Close()
	})
	_, err = w.db.ExecContext(ctx, "CREATE TABLE outage_probe (held_at BIGINT NOT NULL)")
	require.NoError(t, err)
	return w
}

// hold takes the write lock on a dedicated connection, in a transaction
// that also writes a row (on SQLite the proof that the lock is taken), and
// keeps it until release commits.
func (w *writeLock) hold(ctx context.Context) (release func() error, err error) {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	stmts := []string{"BEGIN IMMEDIATE"}
	if w.backend == "postgres" {
		stmts = []string{"BEGIN", "LOCK TABLE jobs IN " + w.mode + " MODE"}
	}
	stmts = append(stmts, fmt.Sprintf("INSERT INTO outage_probe (held_at) VALUES (%d)", time.Now().UnixNano()))
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			_ = conn.Close()
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	return func() error {
		defer conn.Close()
		_, err := conn.ExecContext(context.WithoutCancel(ctx), "COMMIT")
		return err
	}, nil
}

// check reports, while the lock is held, whether another connection's
// write to the jobs table is refused for the lock and whether its read is
// served; any other error is returned. On PostgreSQL both wait at most
// 200 ms (lock_timeout) and the connection survives: a cancelled query
// would cost it, and a new connection may be slow on a loaded machine.
func (w *writeLock) check(ctx context.Context) (writeBlocked, readServed bool, err error) {
	const (
		write = "UPDATE jobs SET updated_at = updated_at WHERE 1 = 0"
		read  = "SELECT count(*) FROM jobs"
	)
	try := func(q string) error { // busy timeout 1 ms
		_, err := w.probe.ExecContext(ctx, q)
		return err
	}
	lockErr := "database is locked"
	if w.backend == "postgres" {
		try = func(q string) error {
			return w.probe.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '200ms'"); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, q)
				return err
			})
		}
		lockErr = "SQLSTATE 55P03" // lock_not_available
	}
	blocked := func(q string) (bool, error) {
		switch err := try(q); {
		case err == nil:
			return false, nil
		case strings.Contains(err.Error(), lockErr):
			return true, nil
		default:
			return false, fmt.Errorf("probe %q: %w", q, err)
		}
	}
	if writeBlocked, err = blocked(write); err != nil {
		return false, false, err
	}
	readBlocked, err := blocked(read)
	return writeBlocked, !readBlocked, err
}

// readsServed says whether reads go on during an outage: all but ACCESS
// EXCLUSIVE let them.
func (w *writeLock) readsServed() bool { return w.mode != "ACCESS EXCLUSIVE" }

// holds counts the rows that the holds committed.
func (w *writeLock) holds(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, w.db.QueryRowContext(t.Context(), "SELECT count(*) FROM outage_probe").Scan(&n))
	return n
}

// outage is one hold of the write lock, as the test process saw it.
type outage struct {
	asked, held, released    time.Time
	writeBlocked, readServed bool
}

func (o outage) length() time.Duration { return o.released.Sub(o.held) }

// outageRun is what holdOutages did: the outages, and the error that ended
// them early.
type outageRun struct {
	outages []outage
	err     error
}

// holdOutages waits a second for the workers to get going, then holds the
// write lock for 1–4 s (drawn from rng), releases it, waits outageGap and
// repeats, until stop is closed (an outage then ends at once) or until is
// past.
func holdOutages(ctx context.Context, w *writeLock, rng *rand.Rand, stop <-chan struct{}, until time.Time) outageRun {
	var run outageRun
	wait := time.Second
	for {
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return run
		case <-t.C:
		}
		if time.Now().After(until) {
			return run
		}
		o := outage{asked: time.Now()}
		release, err := w.hold(ctx)
		if err != nil {
			run.err = err
			return run
		}
		o.held = time.Now()
		var checkErr error
		o.writeBlocked, o.readServed, checkErr = w.check(ctx)
		if checkErr == nil {
			t = time.NewTimer(time.Until(o.held.Add(outageMinHold + time.Duration(rng.Int64N(int64(outageMaxHold-outageMinHold))))))
			select {
			case <-stop:
				t.Stop()
			case <-t.C:
			}
		}
		run.err = errors.Join(checkErr, release())
		o.released = time.Now()
		run.outages = append(run.outages, o)
		if run.err != nil {
			return run
		}
		wait = outageGap
	}
}
