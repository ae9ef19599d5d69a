package jobsbun

import (
	"github.com/jobsmith/jobs/internal/migrate"
)

// The storage of queue settings (see [jobs.JobRepository.PauseQueue]): one
// row per queue that was ever paused, in a table of its own.
//
//   - jobs_queues(name, paused, updated_at): name is the queue; paused is
//     what Claim reads: its statement skips the pending jobs of every
//     queue in (SELECT name FROM jobs_queues WHERE paused), one lookup of
//     a table that holds a row per paused (or once paused) queue. A queue
//     without a row is not paused, so queues need no row to run, and a
//     queue can be paused before any job exists in it.
//
// The cost: nothing paused, the filter is one scan of a tiny table per
// claim statement (no measurable change of a claim of 100 jobs). A paused
// queue's pending jobs stay in jobs_claim_idx, which the claim walks in
// claim order: the paused jobs that come before the jobs a claim takes are
// read and skipped, so a large paused backlog ahead of the other queues'
// jobs slows every claim (100 000 paused jobs ahead: about 30 ms per claim
// on SQLite and on PostgreSQL, on a loaded 2-core test machine), as a claim
// restricted to some queues walks past the jobs of the others.
//
// On PostgreSQL a resume (paused going from true to false) sends the "n"
// hint of schema_notify.go in the transaction of the resume, so the
// runners of other processes claim the resumed queue's jobs at once
// instead of at their next poll. A pause sends nothing: claims simply stop
// returning the queue's jobs.

var sqliteQueuesStep = migrate.Step{
	Version: 3,
	Name:    "queue pauses",
	Stmts: []string{`CREATE TABLE jobs_queues (
	name TEXT NOT NULL PRIMARY KEY,
	paused BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at TIMESTAMP NOT NULL
) WITHOUT ROWID`},
}

var pgQueuesStep = migrate.Step{
	Version: 5,
	Name:    "queue pauses",
	Stmts: []string{`CREATE TABLE jobs_queues (
	name TEXT NOT NULL PRIMARY KEY,
	paused BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at TIMESTAMPTZ NOT NULL
)`,
		`CREATE FUNCTION jobs_queues_notify_resume() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(` + pgNotifyChannelSQL + `, 'n');
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_queues_notify_resume AFTER UPDATE ON jobs_queues
	FOR EACH ROW WHEN (OLD.paused AND NOT NEW.paused) EXECUTE FUNCTION jobs_queues_notify_resume()`,
	},
}

// notPausedSQL is the claim's filter on the queue of a pending job.
const notPausedSQL = " AND queue NOT IN (SELECT name FROM jobs_queues WHERE paused)"
