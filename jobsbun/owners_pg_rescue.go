package jobsbun

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// The rescuer's side of owner locks on PostgreSQL: looking for free locks,
// judging suspects and rescuing the jobs of dead owners (the rules are at
// the top of owners_pg.go, which holds the owner's side).

// pgLookSQL reads, in one row per free owner (or one row of NULLs when none
// is free), the database's count of sessions ended by the server, whether
// the server started less than ? ago, and the owners of running jobs that
// recorded themselves in jobs_owners and whose lock nobody holds or waits
// for, with their epochs and keys. It tries each such owner's lock
// exclusively, which costs a lookup in the lock table (reading pg_locks
// would copy all of it) and holds the lock for the statement only: an
// owner taking its lock back at that instant waits that long.
var pgLookSQL = `SELECT s.killed, s.young, f.owner, f.epoch, f.lock_key
FROM (SELECT (` + pgKilledSQL + `) AS killed,
	now() - pg_postmaster_start_time() < ?::interval AS young) s
LEFT JOIN (SELECT o.owner, o.epoch, o.lock_key FROM jobs_owners o
	WHERE o.owner IN (` + runningOwnersSQL + `) AND pg_try_advisory_xact_lock(` + pgOwnerLockOf("o.lock_key") + `)) f ON true`

// pgSuspect is an owner whose lock a rescuer found free.
type pgSuspect struct {
	epoch  int64
	since  time.Time // when its lock was first seen free at this epoch, or the last look that saw sessions ended
	killed bool      // sessions were ended by the server since before it was seen free
}

// pgLook is what a rescuer saw at its last look.
type pgLook struct {
	done   bool  // there was a look
	killed int64 // sessions_killed then
}

// pgKilledSQL reads the database's count of sessions ended by the server.
const pgKilledSQL = "SELECT sessions_killed FROM pg_stat_database WHERE datname = current_database()"

// rescueDeadPG is RescueDead on PostgreSQL: one look (judgeOwnersPG). An
// owner whose lock is found free becomes a suspect; one still free at the
// same epoch a grace later is rescued by the look that finds it so (see
// the top of this file).
//
// Runners call it every 25 ms; it looks at most every pgOwnerLookEvery
// unless a suspect is due, so that a database shared by many processes is
// not kept busy by looks (a look reads the running jobs' index and tries
// owner locks).
func (r *Repository) rescueDeadPG(ctx context.Context, limit int) ([]*jobs.Job, error) {
	rescued := []*jobs.Job{}
	now := time.Now()
	o := &r.owners
	o.mu.Lock()
	skip := now.Before(o.nextLook) && (o.due.IsZero() || now.Before(o.due))
	if !skip {
		o.nextLook = now.Add(pgOwnerLookEvery)
	}
	o.mu.Unlock()
	if skip {
		return rescued, nil
	}
	due, err := r.judgeOwnersPG(ctx, limit, &rescued)
	o.mu.Lock()
	o.due = due
	o.mu.Unlock()
	return rescued, err
}

// pgOwnerLookEvery is how often rescueDeadPG looks when no suspect is due.
const pgOwnerLookEvery = 100 * time.Millisecond

// pgFree is an owner whose lock a look found free.
type pgFree struct {
	owner string
	epoch int64
	key   int32
}

// lookPG reads pgLookSQL.
func (r *Repository) lookPG(ctx context.Context) (frees []pgFree, killed int64, young bool, err error) {
	rows, err := r.db.QueryContext(ctx, pgLookSQL, pgOwnerRestart.String())
	if err != nil {
		return nil, 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var owner sql.NullString
		var epoch sql.NullInt64
		var key sql.NullInt32
		if err := rows.Scan(&killed, &young, &owner, &epoch, &key); err != nil {
			return nil, 0, false, err
		}
		if owner.Valid {
			frees = append(frees, pgFree{owner.String, epoch.Int64, key.Int32})
		}
	}
	return frees, killed, young, rows.Err()
}

// judgeOwnersPG looks for free owner locks once, rescues the owners whose
// grace has passed into *rescued, and returns when the next suspect is
// due (zero when none is).
func (r *Repository) judgeOwnersPG(ctx context.Context, limit int, rescued *[]*jobs.Job) (due time.Time, err error) {
	const op = "rescue dead"
	frees, killed, young, err := r.lookPG(ctx)
	if err != nil {
		return time.Time{}, storageError(op, uuid.Nil, err)
	}
	now := time.Now()
	o := &r.owners
	o.mu.Lock()
	// Calm: no session was ended by the server since the last look (nor
	// the counter reset by a crash restart).
	calm := !young && o.look.done && killed == o.look.killed
	o.look = pgLook{done: true, killed: killed}
	seen := map[string]pgSuspect{}
	var judge []pgFree
	for _, f := range frees {
		if o.pgHeld[f.owner] || young {
			continue
		}
		s, ok := o.suspects[f.owner]
		switch {
		case !ok || s.epoch != f.epoch:
			s = pgSuspect{epoch: f.epoch, since: now, killed: !calm}
		case !calm:
			s.since, s.killed = now, true
		}
		seen[f.owner] = s
		grace := o.graceOr()
		if s.killed {
			grace = pgOwnerKilledGrace
		}
		switch at := s.since.Add(grace); {
		case !now.Before(at):
			judge = append(judge, f)
		case due.IsZero() || at.Before(due):
			due = at
		}
	}
	o.suspects = seen // owners no longer free are no longer suspects
	o.mu.Unlock()
	for _, f := range judge {
		if len(*rescued) >= limit {
			break
		}
		js, err := r.rescueOwnerPG(ctx, f.owner, f.key, f.epoch, limit-len(*rescued))
		if err != nil {
			return time.Time{}, err
		}
		*rescued = append(*rescued, js...)
	}
	return due, nil
}

// graceOr is the grace of suspects: pgOwnerGrace unless a test set another.
func (o *ownerLocks) graceOr() time.Duration {
	if o.grace > 0 {
		return o.grace
	}
	return pgOwnerGrace
}

// errOwnerBack aborts a rescue whose owner took its lock back.
var errOwnerBack = errors.New("owner is back")

// rescueOwnerPG requeues up to limit running jobs of owner, in a
// transaction that holds owner's lock exclusively (so the owner cannot take
// it back meanwhile) and finds the epoch still at epoch. When all are
// rescued, the owner's record goes too.
func (r *Repository) rescueOwnerPG(ctx context.Context, owner string, key int32, epoch int64, limit int) ([]*jobs.Job, error) {
	const op = "rescue dead"
	t := rules.Now()
	var rescued []*jobs.Job
	err := r.write(ctx, op, true, func(ctx context.Context, db bun.IDB) error {
		rescued = nil
		var got bool
		if err := db.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock("+pgOwnerLock+")", key).Scan(&got); err != nil {
			return err
		}
		var now int64
		err := db.QueryRowContext(ctx, "SELECT epoch FROM jobs_owners WHERE owner = ? FOR UPDATE", owner).Scan(&now)
		if !got || errors.Is(err, sql.ErrNoRows) || (err == nil && now != epoch) {
			return errOwnerBack
		}
		if err != nil {
			return err
		}
		// No SKIP LOCKED: a row locked by a write of the dead owner's
		// (aborting with its session) or by a caller's cancel is waited
		// for, not left running under an owner that has no record left.
		set, args := r.rescueSet(t, rules.OwnerDied)
		args = append(args, owner, limit, owner)
		rescued, err = r.rescueRows(ctx, db, t, set+"WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND lease_owner = ? LIMIT ?)"+
			" AND status = 'running' AND lease_owner = ? RETURNING "+r.d.jobColumns(), args)
		if err != nil || len(rescued) >= limit {
			return err
		}
		_, err = db.ExecContext(ctx, "DELETE FROM jobs_owners WHERE owner = ? AND NOT EXISTS "+
			"(SELECT 1 FROM jobs WHERE status = 'running' AND lease_owner = ?)", owner, owner)
		return err
	})
	if errors.Is(err, errOwnerBack) {
		return nil, nil
	}
	return rescued, err
}
