package jobsbun

import (
	"context"
	"time"
)

// SQLite copies its write-ahead log back into the database file at a
// checkpoint, which by default it runs inside the commit that grows the
// log past 1 000 pages: that commit takes milliseconds longer, and so does
// every write queued behind it (a lone key's pickup p99 is 5 ms with it,
// 1.7 ms without). jobsqlite.Open turns that off (wal_autocheckpoint 0)
// and its repository, which owns the database ([WithCloseDB]),
// checkpoints in the background instead, after every
// walCheckpointWrites writes of its own and at least every
// walCheckpointIdle (writes of one's own through DB()): a PASSIVE
// checkpoint, which blocks no writer and no reader. Between writes it
// copies the whole log, and the next write starts the log over. Under a
// stream of writes the next write began before the checkpoint ended and
// the log goes on growing, so once it holds more than walCheckpointMax
// pages the checkpoint runs as a write, holding this repository's writes
// and the writer lock (writerlock_unix.go) off until it has copied the
// log: the write after it starts the log over. A repository on a database
// of the caller's (jobsqlite.OpenDB and New) leaves the checkpoints to
// SQLite, as before.
const (
	walCheckpointWrites = 100
	walCheckpointIdle   = time.Second
	walCheckpointMax    = 2000
)

// wrote counts a write for the background checkpoint.
func (r *Repository) wrote() {
	if r.walKick != nil && r.walWrites.Add(1)%walCheckpointWrites == 0 {
		select {
		case r.walKick <- struct{}{}:
		default:
		}
	}
}

// checkpointWAL runs the background checkpoints until ctx ends.
func (r *Repository) checkpointWAL(ctx context.Context) {
	defer close(r.walDone)
	t := time.NewTicker(walCheckpointIdle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.walKick:
		case <-t.C:
		}
		// A failure (the database busy or gone) waits for the next turn.
		// A log that grew past walCheckpointMax was not started over: a
		// write began while the checkpoint ran, so the next checkpoint
		// holds the writes off.
		if log, err := r.walCheckpoint(ctx); err == nil && log > walCheckpointMax {
			_ = r.gatedCheckpoint(ctx)
		}
	}
}

// walCheckpoint runs one PASSIVE checkpoint and returns the pages in the
// log.
func (r *Repository) walCheckpoint(ctx context.Context) (log int, err error) {
	var busy, done int
	err = r.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done)
	return log, err
}

// gatedCheckpoint runs a PASSIVE checkpoint while no write of this
// repository, nor of another holding the writer lock, can start.
func (r *Repository) gatedCheckpoint(ctx context.Context) error {
	if err := r.gate.acquire(ctx); err != nil {
		return err
	}
	defer r.gate.release()
	if r.wlock.acquire(ctx) {
		defer r.wlock.release(false)
	}
	_, err := r.walCheckpoint(ctx)
	return err
}
