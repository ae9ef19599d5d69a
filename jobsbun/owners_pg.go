package jobsbun

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file tells dead owners from live ones on PostgreSQL, as owners.go
// does on SQLite with lock files.
//
// Each runner holds a shared session-level advisory lock, keyed by a hash
// of its owner name, on a connection it keeps for that alone, and records
// itself in the table jobs_owners with an epoch that it increments each
// time it takes the lock. The server releases the lock when the session
// ends: when the process dies (the kernel closes its sockets, and the
// session notices within pgOwnerCheck even while it waits in pg_sleep),
// but also when a live process's session is ended for it: by an
// administrator (pg_terminate_backend), a server shutdown or a crash of
// another backend. A free lock alone therefore proves nothing, and the
// live owner takes its lock back at once on a new session. A rescuer
// judges an owner dead only when
//
//   - its lock has stayed free, at the same epoch, for pgOwnerGrace;
//   - no session of the database was ended by the server meanwhile: the
//     counter pg_stat_database.sessions_killed (which a client's death
//     does not move, and a terminate or shutdown does) is the same at
//     every look since the look before the lock was first seen free (or,
//     for a rescuer's first look, since it took its own lock). Otherwise
//     the owner gets pgOwnerKilledGrace from the last change, time enough
//     to connect again on the busiest host;
//   - the server has been up for pgOwnerRestart (a crash restart resets
//     the counter, which counts as a change);
//
// and it rescues in a transaction that holds the owner's lock exclusively
// and checks the epoch again, so an owner that is taking its lock back
// waits for that transaction and then finds its jobs gone, or wins and
// keeps them.
//
// A paused process keeps its session, its lock and its jobs. Owners
// without a row in jobs_owners (an older version of this library) are
// never judged: their leases expire as before.

// pgOwnerGrace is how long a dead owner's lock must stay free, its epoch
// unchanged and no session ended by the server, before it is judged dead.
// pgOwnerKilledGrace replaces it after the server ended sessions: a live
// owner whose sessions were all ended needs a new connection, which a
// saturated host (PostgreSQL starts a process per connection) can take
// hundreds of milliseconds to give.
const (
	pgOwnerGrace       = 50 * time.Millisecond
	pgOwnerKilledGrace = 3 * time.Second
)

// pgOwnerRestart is how long after the server started no owner is judged.
const pgOwnerRestart = 10 * time.Second

// pgOwnerCheck is how often the owner's session checks, while it waits,
// that its client is still connected (client_connection_check_interval,
// PostgreSQL 14 and later on Linux), and pgOwnerWait how long each wait
// lasts then. Where the setting is missing the session waits pgOwnerCheck
// at a time instead, so that a dead client is still noticed that soon.
const (
	pgOwnerCheck = 20 * time.Millisecond
	pgOwnerWait  = 2 * time.Second
)

// pgOwnerKey is the second half of owner's advisory lock key; the first
// is the OID of the table jobs_owners, so that owners in different schemas
// of one database never share a lock (pgOwnerLock).
func pgOwnerKey(owner string) int32 {
	h := fnv.New32a()
	h.Write([]byte(owner))
	return int32(h.Sum32())
}

// pgOwnerLock is the two-key argument list of an owner's advisory lock,
// the owner's half as a placeholder.
var pgOwnerLock = pgOwnerLockOf("?")

// pgOwnerLockOf is the argument list of the owner lock whose key is the
// SQL expression key.
func pgOwnerLockOf(key string) string { return "'jobs_owners'::regclass::oid::int, " + key }

// pgLockHeldSQL is true when any session holds or waits for the advisory
// lock of the owner key %s (pg_locks shows the two halves of the key as
// classid and objid).
const pgLockHeldSQL = `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND l.objsubid = 2 AND l.classid = 'jobs_owners'::regclass AND l.objid = (%s)::int::oid)`

// pgOwnerUnsupported is HoldOwner's error where owner locks cannot work on
// PostgreSQL: a pool of one connection, which the lock would take.
func pgOwnerUnsupported(op string) error {
	return &jobs.Error{Code: jobs.ErrInvalidArgument, Op: op,
		Msg: "owner locks need a connection of their own: the pool allows only one", Err: errors.ErrUnsupported}
}

// holdOwnerPG is HoldOwner on PostgreSQL. The lock is taken before it
// returns when the database can be reached; otherwise a goroutine keeps
// trying, and until it succeeds no rescuer judges the owner. The
// goroutine takes the lock back whenever its session ends, until release.
func (r *Repository) holdOwnerPG(ctx context.Context, owner string) (release func(), err error) {
	const op = "hold owner"
	if r.db.DB.Stats().MaxOpenConnections == 1 {
		return nil, pgOwnerUnsupported(op)
	}
	var version int
	if err := r.db.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err == nil && version < 140000 {
		return nil, &jobs.Error{Code: jobs.ErrInvalidArgument, Op: op,
			Msg: "owner locks need PostgreSQL 14 or later (pg_stat_database.sessions_killed)", Err: errors.ErrUnsupported}
	}
	key := pgOwnerKey(owner)
	var held bool
	err = r.db.QueryRowContext(ctx, "SELECT "+fmt.Sprintf(pgLockHeldSQL, "?::int"), key).Scan(&held)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, storageError(op, uuid.Nil, err)
	case held:
		return nil, newError(jobs.ErrConflict, op, uuid.Nil, "owner %q is held by a live process", owner)
	}
	o := &r.owners
	o.mu.Lock()
	if o.pgHeld == nil {
		o.pgHeld = map[string]bool{}
	}
	o.pgHeld[owner] = true // never judged here, even while it takes its lock back
	o.mu.Unlock()
	conn, _ := r.lockOwnerPG(ctx, owner, key) // nil: the goroutine tries again
	// Records of owners that died with no running job are never judged:
	// remove those a minute old whose lock is free (best effort).
	_, _ = r.db.ExecContext(ctx, `DELETE FROM jobs_owners o WHERE held_at < now() - interval '1 minute'
		AND NOT EXISTS (SELECT 1 FROM jobs WHERE status = 'running' AND lease_owner = o.owner)
		AND pg_try_advisory_xact_lock(`+pgOwnerLockOf("o.lock_key")+`)`)
	// The first look of this repository's rescues compares with this.
	var killed int64
	if r.db.QueryRowContext(ctx, pgKilledSQL).Scan(&killed) == nil {
		o.mu.Lock()
		if !o.look.done {
			o.look = pgLook{done: true, killed: killed}
		}
		o.mu.Unlock()
	}
	hctx, stop := context.WithCancel(r.life) // until release or Close
	done := make(chan struct{})
	go r.keepOwnerPG(hctx, done, owner, key, conn)
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			select {
			case <-done:
			case <-time.After(time.Second):
			}
			o.mu.Lock()
			delete(o.pgHeld, owner)
			o.mu.Unlock()
		})
	}, nil
}

// lockOwnerPG takes owner's lock on a connection of the pool, which it
// keeps, and records the new epoch.
func (r *Repository) lockOwnerPG(ctx context.Context, owner string, key int32) (bun.Conn, error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return bun.Conn{}, err
	}
	err = func() error {
		for _, set := range []string{"SET statement_timeout = 0", "SET lock_timeout = 0"} {
			if _, err := conn.ExecContext(ctx, set); err != nil {
				return err
			}
		}
		// Timeouts that would end the session; the last is PostgreSQL
		// 17's, unknown before, and refused harmlessly there.
		for _, set := range []string{"idle_session_timeout", "idle_in_transaction_session_timeout", "transaction_timeout"} {
			_, _ = conn.ExecContext(ctx, "SET "+set+" = 0")
		}
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock_shared("+pgOwnerLock+")", key); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, `INSERT INTO jobs_owners (owner, lock_key, epoch, held_at) VALUES (?, ?, 1, now())
			ON CONFLICT (owner) DO UPDATE SET epoch = jobs_owners.epoch + 1, held_at = now()`, owner, key)
		return err
	}()
	if err != nil {
		discardConn(conn)
		return bun.Conn{}, err
	}
	return conn, nil
}

// keepOwnerPG keeps owner's lock until ctx ends: it waits on the lock's
// connection and takes the lock again on a new one whenever that session
// ends. conn is the connection holding the lock, or nil.
//
// When the lock's session ends, the pool's other sessions have often ended
// with it (a server restart, or an administrator ending all of the
// application's sessions), and the pool hands them out until it learns:
// each failed try is taken at once, without a pause, so that the lock is
// back within pgOwnerGrace; only when the database cannot be reached does
// the loop back off.
func (r *Repository) keepOwnerPG(ctx context.Context, done chan<- struct{}, owner string, key int32, conn bun.Conn) {
	defer close(done)
	fails := 0
	for {
		if conn.Conn == nil {
			var err error
			if conn, err = r.lockOwnerPG(ctx, owner, key); err != nil {
				fails++
				if fails > r.db.DB.Stats().OpenConnections+2 {
					// Not stale sessions: the database is away.
					if !sleepCtx(ctx, min(time.Duration(fails)*5*time.Millisecond, pgOwnerGrace/4)) {
						return
					}
				} else if ctx.Err() != nil {
					return
				}
				continue
			}
			fails = 0
		}
		wait := pgOwnerWait
		if _, err := conn.ExecContext(ctx, "SET client_connection_check_interval = ?", pgOwnerCheck.Milliseconds()); err != nil {
			wait = pgOwnerCheck
		}
		for ctx.Err() == nil {
			_, err := conn.ExecContext(ctx, "SELECT pg_sleep(?)", wait.Seconds())
			if err != nil && ctx.Err() == nil {
				// A cancelled wait (pg_cancel_backend) leaves the session,
				// and the lock, as they were.
				_, err = conn.ExecContext(ctx, "SELECT 1")
			}
			if err != nil {
				break
			}
		}
		if ctx.Err() != nil {
			// Released: remove the record while still holding the lock,
			// so that no rescuer judges what is not there.
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = r.db.ExecContext(dctx, "DELETE FROM jobs_owners WHERE owner = ?", owner)
			cancel()
			discardConn(conn)
			return
		}
		discardConn(conn) // the session ended, or cannot be trusted
		conn = bun.Conn{}
	}
}

// discardConn closes conn's session instead of returning it to the pool:
// a pooled session would go on holding its advisory locks.
func discardConn(conn bun.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// sleepCtx waits d or until ctx ends, and reports whether ctx is still
// alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
