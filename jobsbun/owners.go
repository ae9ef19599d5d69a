package jobsbun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file tells dead owners from live ones on SQLite, so that a killed
// process's jobs are rescued at once instead of when their leases expire
// (owners_pg.go does it on PostgreSQL).
//
// Each runner holds an exclusive flock(2) on a lock file of its own owner
// name, in a directory beside the database file, from before its first
// claim until Run returns. The kernel releases the lock when the process
// dies, however it dies; a stopped or paused process keeps it. So a
// rescuer that can take an owner's lock knows that owner is dead, not
// slow. Owners without a lock file (an older version of this library)
// are never judged: their leases expire as before.
//
// A lock file is removed only by whoever holds its lock, and a holder
// checks after locking that the path still names the file it locked; so a
// lock is never held on a file that another process can no longer find.

// ownerLocks is the repository's state of owner lock files.
type ownerLocks struct {
	mu    sync.Mutex          // guards the fields below
	known bool                // dir has been looked up
	dir   string              // "" when the database has no file (in memory)
	held  map[string]*os.File // open lock files, by owner

	// PostgreSQL (owners_pg.go): owners whose lock was last seen free.
	suspects map[string]pgSuspect
	look     pgLook          // the last look for free owners
	nextLook time.Time       // rescueDeadPG's next look, unless a suspect is due first
	due      time.Time       // when the next suspect is due (zero: none)
	pgHeld   map[string]bool // owners held by this repository
	grace    time.Duration   // pgOwnerGrace; longer in some tests
}

// ownersDir returns the directory of the owner lock files: the database
// file's path followed by "-owners", or "" for a database in memory. A
// failed look-up is tried again at the next call.
func (r *Repository) ownersDir(ctx context.Context) (string, error) {
	o := &r.owners
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.known {
		return o.dir, nil
	}
	rows, err := r.db.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dir := ""
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", err
		}
		if name == "main" && file != "" {
			dir = file + "-owners"
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	o.known, o.dir = true, dir
	return dir, nil
}

// ownerLockPath is the lock file of owner in dir: a hash, since owner
// names may hold any character.
func ownerLockPath(dir, owner string) string {
	h := sha256.Sum256([]byte(owner))
	return filepath.Join(dir, hex.EncodeToString(h[:16])+".lock")
}

// HoldOwner takes the owner lock of owner, which tells the rescuers of
// other processes (RescueDead) that owner's process is alive, and returns
// the function that releases it (see the package doc, Dead owners).
// [jobs.Runner.Run] calls it before its first claim, through an interface,
// and releases the lock when it returns; the process's death releases it
// too.
//
// On SQLite it creates the directory "<database file>-owners" when needed,
// removes the lock files of dead owners that have no running job left, and
// returns [jobs.ErrUnavailable] when the lock file cannot be created. On
// PostgreSQL it keeps a connection of the pool and a goroutine, which takes
// the lock back whenever its session ends, until release; when the
// database cannot be reached at the call, it returns nil and that
// goroutine keeps trying (until it succeeds, no rescuer judges owner). It
// returns [jobs.ErrConflict] when another live holder has the lock of
// owner (owner names must be unique), and an error wrapping
// errors.ErrUnsupported on a database in memory, on systems without flock
// and on PostgreSQL with a pool of one connection. It is safe for
// concurrent use.
func (r *Repository) HoldOwner(ctx context.Context, owner string) (release func(), err error) {
	const op = "hold owner"
	if err := refused(op, rules.Name("owner", owner, false)); err != nil {
		return nil, err
	}
	if err := r.read(op); err != nil {
		return nil, err
	}
	if r.d.pg {
		return r.holdOwnerPG(ctx, owner)
	}
	dir, err := r.ownerLockDir(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	path := ownerLockPath(dir, owner)
	f, err := lockOwnerFile(path, true)
	// Another process's sweep (see sweepOwners) may hold the lock of a
	// file just created, for an instant: try again for a while.
	for try := 0; errors.Is(err, errLockHeld) && try < 100 && ctx.Err() == nil; try++ {
		time.Sleep(5 * time.Millisecond)
		f, err = lockOwnerFile(path, true)
	}
	switch {
	case errors.Is(err, errLockHeld):
		return nil, newError(jobs.ErrConflict, op, uuid.Nil, "owner %q is held by a live process", owner)
	case err != nil:
		return nil, storageError(op, uuid.Nil, err)
	}
	// The name, for sweepOwners and for people looking at the directory.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(owner), 0)
	}
	r.sweepOwners(ctx, dir, path)
	o := &r.owners
	o.mu.Lock()
	if o.held == nil {
		o.held = map[string]*os.File{}
	}
	// The map keeps f reachable: a runner that gives up on handlers at
	// shutdown keeps its lock without calling release, and a file left to
	// the garbage collector would be closed, and the lock freed, while the
	// process lives.
	o.held[owner] = f
	o.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			delete(o.held, owner)
			o.mu.Unlock()
			_ = os.Remove(path) // while still locked
			_ = f.Close()
		})
	}, nil
}

// ownerLockDir is ownersDir for HoldOwner and RescueDead: an unsupported
// error where there are no owner locks.
func (r *Repository) ownerLockDir(ctx context.Context, op string) (string, error) {
	if r.d.pg || !flockSupported {
		return "", &jobs.Error{Code: jobs.ErrInvalidArgument, Op: op,
			Msg: "owner locks need SQLite on a system with flock", Err: errors.ErrUnsupported}
	}
	dir, err := r.ownersDir(ctx)
	if err != nil {
		return "", storageError(op, uuid.Nil, err)
	}
	if dir == "" {
		return "", &jobs.Error{Code: jobs.ErrInvalidArgument, Op: op,
			Msg: "owner locks need a database file", Err: errors.ErrUnsupported}
	}
	return dir, nil
}

// RescueDead rescues, at once, the running jobs of owners whose process is
// known to be dead, whatever their leases: on SQLite, owners that have a
// lock file (see HoldOwner) whose lock this call can take; on PostgreSQL,
// owners whose lock the calls of this repository have found free at the
// same epoch for 50 ms, or for 3 s when the server ended sessions
// meanwhile (see the package doc, Dead owners). Each job
// goes back to pending like [Repository.RescueExpired] does, its attempt
// counted, with the attempt error "owner died" (failed when it has no
// attempt left, canceled when a cancel was requested). The lease is
// cleared, so any late write under it is refused. When all of a dead
// owner's jobs are rescued, its lock file or row is removed. Owners
// without a lock, and the owners held in this repository, are never
// judged.
//
// Each call costs one read of the partial index of running jobs and, on
// SQLite, per other owner with running jobs, an open and a non-blocking
// flock, or on PostgreSQL one read of pg_locks; a write only when an owner
// is dead. It returns at most limit jobs (1 to 1000),
// an error wrapping errors.ErrUnsupported where HoldOwner has one, and
// [jobs.ErrUnavailable] when storage fails. It is safe for concurrent use,
// also by several processes: each job is rescued once.
func (r *Repository) RescueDead(ctx context.Context, limit int) ([]*jobs.Job, error) {
	const op = "rescue dead"
	if err := refused(op, rules.RescueLimit(limit)); err != nil {
		return nil, err
	}
	if err := r.read(op); err != nil {
		return nil, err
	}
	if r.d.pg {
		return r.rescueDeadPG(ctx, limit)
	}
	dir, err := r.ownerLockDir(ctx, op)
	if err != nil {
		return nil, err
	}
	owners, err := r.runningOwners(ctx)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	rescued := []*jobs.Job{}
	for _, owner := range owners {
		if len(rescued) >= limit {
			break
		}
		if r.holdsOwner(owner) {
			continue
		}
		path := ownerLockPath(dir, owner)
		f, err := lockOwnerFile(path, false)
		if err != nil {
			continue // no lock file, a live (or paused) owner, or already rescued
		}
		js, err := r.rescueOwner(ctx, owner, limit-len(rescued))
		if err == nil && len(js) < limit-len(rescued) {
			_ = os.Remove(path) // nothing of it is left running
		}
		_ = f.Close()
		if err != nil {
			return rescued, err
		}
		rescued = append(rescued, js...)
	}
	return rescued, nil
}

// sweepOwners removes the lock files of dead owners that have no running
// job left (a process killed while idle), so that the directory does not
// grow with every crash; those with running jobs are left to RescueDead.
// It is best effort: an error leaves a file for the next sweep. mine is the
// caller's own file.
func (r *Repository) sweepOwners(ctx context.Context, dir, mine string) {
	names, err := filepath.Glob(filepath.Join(dir, "*.lock"))
	if err != nil {
		return
	}
	for _, path := range names {
		if path == mine {
			continue
		}
		f, err := lockOwnerFile(path, false)
		if err != nil {
			continue // alive, paused, or gone
		}
		owner := make([]byte, rules.MaxNameLength+1)
		n, _ := f.ReadAt(owner, 0)
		var running int
		err = r.db.QueryRowContext(ctx, "SELECT count(*) FROM jobs WHERE status = 'running' AND lease_owner = ?",
			string(owner[:n])).Scan(&running)
		if err == nil && running == 0 && n > 0 {
			_ = os.Remove(path) // while locked
		}
		_ = f.Close()
	}
}

// holdsOwner reports whether owner's lock is held in this process.
func (r *Repository) holdsOwner(owner string) bool {
	r.owners.mu.Lock()
	defer r.owners.mu.Unlock()
	return r.owners.held[owner] != nil
}

// runningOwnersSQL reads the owners of running jobs through the partial
// index of running jobs (jobs_rescue_idx).
const runningOwnersSQL = "SELECT DISTINCT lease_owner FROM jobs WHERE status = 'running' AND lease_owner IS NOT NULL"

// runningOwners returns the owners of running jobs.
func (r *Repository) runningOwners(ctx context.Context) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, runningOwnersSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		owners = append(owners, o)
	}
	return owners, rows.Err()
}

// rescueOwner requeues up to limit running jobs of owner, whose death the
// caller has established by holding its lock.
func (r *Repository) rescueOwner(ctx context.Context, owner string, limit int) ([]*jobs.Job, error) {
	const op = "rescue dead"
	t := rules.Now()
	var rescued []*jobs.Job
	err := r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
		set, args := r.rescueSet(t, rules.OwnerDied)
		sub := "SELECT id FROM jobs WHERE status = 'running' AND lease_owner = ? LIMIT ?" + r.d.skipLocked()
		args = append(args, owner, limit, owner)
		var err error
		rescued, err = r.rescueRows(ctx, db, t, set+"WHERE "+r.d.idIn(sub)+
			" AND status = 'running' AND lease_owner = ? RETURNING "+r.d.jobColumns(), args)
		return err
	})
	return rescued, err
}
