package jobsbun

import (
	"github.com/jobsmith/jobs/internal/migrate"
)

// What keeps List and Stats cheap as finished jobs pile up (retention
// keeps a week of them: millions of rows).
//
// List: one partial index on finished rows only, so that creating,
// claiming and retrying a job never touch it (a finish adds an entry and a
// delete removes it): jobs_list_idx (kind, status, id). List reads one
// range of it per kind and finished status it needs, newest first, and
// merges them (list.go): a filter by kind reads its kind in each status; a
// filter by status alone reads each kind that the counts say has jobs in
// that status. Pending and running rows, few by nature, are read through
// the claim, promote and rescue indexes. One index, not one more by status
// alone: each index is paid by every finish and every pruned row.
//
// Counts: jobs_counts(queue, kind, status, n) holds how many finished jobs
// there are of each queue, kind and terminal status; pending and running
// jobs are counted live through their partial indexes (counts.go).
// Triggers keep the table exact in the transaction of every write, whoever
// makes it (Finish, RequestCancel, RescueExpired, Retry, Prune, or SQL of
// one's own): a row that becomes finished adds one, one that stops being
// finished (deleted, or set pending again) takes one away.
//
// On SQLite, which has one writer at a time, the triggers update
// jobs_counts itself. The delete trigger also deletes the job's output, so
// that Prune is one DELETE without RETURNING: SQLite runs a RETURNING
// clause as a trigger of its own, so a pruned row costs one trigger call,
// as before the counts (the counter update it adds is a search of a
// table of a few rows, in a page the cache holds).
//
// On PostgreSQL a counter row updated by every finish would make every
// finishing transaction of every process wait for the one before, and take
// those rows in any order (deadlocks), so statement-level triggers append
// the statement's net change per queue, kind and status to
// jobs_count_changes, a table that only grows, and jobs_counts_fold() moves
// the changes into jobs_counts. A delete (a Prune batch) therefore adds one
// change per queue, kind and status, not one per row. The triggers call
// the fold after about one write in thirty, and it gives way at once when
// another transaction is folding (an advisory lock keyed by the table's
// OID), so that the readers, which add the pending changes to the counts,
// never sum more than a few hundred rows.
//
// The migration step fills jobs_counts from the rows already there: it
// runs in the migration's write transaction, which (SQLite's one writer;
// PostgreSQL's lock on jobs taken by CREATE INDEX) holds every other
// writer back until it commits, so the count misses none.

// listIndexes is the index statement of List, shared by both dialects.
var listIndexes = []string{
	`CREATE INDEX jobs_list_idx ON jobs (kind, status, id) WHERE finished_at IS NOT NULL`,
}

// countsFillSQL counts the finished jobs already there.
const countsFillSQL = `INSERT INTO jobs_counts (queue, kind, status, n)
	SELECT queue, kind, status, COUNT(*) FROM jobs WHERE finished_at IS NOT NULL GROUP BY queue, kind, status`

var sqliteCountsStep = migrate.Step{
	Version: 8,
	Name:    "list indexes and counts",
	Stmts: append(append([]string{}, listIndexes...),
		`CREATE TABLE jobs_counts (
	queue TEXT NOT NULL,
	kind TEXT NOT NULL,
	status TEXT NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (queue, kind, status)
) WITHOUT ROWID`,
		countsFillSQL,
		`CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs WHEN NEW.finished_at IS NOT NULL BEGIN
	INSERT INTO jobs_counts (queue, kind, status, n) VALUES (NEW.queue, NEW.kind, NEW.status, 1)
		ON CONFLICT (queue, kind, status) DO UPDATE SET n = n + 1;
END`,
		// A job that becomes finished: one upsert, the finish of every job.
		// A raw UPDATE that finishes a job sets finished_at too
		// (jobs_finished_check), so the trigger names that column, which
		// a claim does not set.
		`CREATE TRIGGER jobs_counts_finish AFTER UPDATE OF finished_at ON jobs
	WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL BEGIN
	INSERT INTO jobs_counts (queue, kind, status, n) VALUES (NEW.queue, NEW.kind, NEW.status, 1)
		ON CONFLICT (queue, kind, status) DO UPDATE SET n = n + 1;
END`,
		// A finished job that changes (a retry, SQL of one's own).
		// It stops being finished only with a change of status
		// (jobs_finished_check).
		`CREATE TRIGGER jobs_counts_update AFTER UPDATE OF status, queue, kind ON jobs
	WHEN OLD.finished_at IS NOT NULL AND (OLD.status <> NEW.status OR OLD.queue <> NEW.queue OR OLD.kind <> NEW.kind) BEGIN
	UPDATE jobs_counts SET n = n - 1 WHERE queue = OLD.queue AND kind = OLD.kind AND status = OLD.status;
	INSERT INTO jobs_counts (queue, kind, status, n) SELECT NEW.queue, NEW.kind, NEW.status, 1
		WHERE NEW.finished_at IS NOT NULL
		ON CONFLICT (queue, kind, status) DO UPDATE SET n = n + 1;
END`,
		// Output too: a job deleted by any statement leaves no items.
		`CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs
	WHEN OLD.finished_at IS NOT NULL OR OLD.output_seq <> 0 BEGIN
	UPDATE jobs_counts SET n = n - 1
		WHERE OLD.finished_at IS NOT NULL AND queue = OLD.queue AND kind = OLD.kind AND status = OLD.status;
	DELETE FROM job_output WHERE OLD.output_seq <> 0 AND job_id = OLD.id;
END`,
	),
}

// pgCountsFoldLock is the try-lock of jobs_counts_fold: a transaction-level
// advisory lock whose first key is the OID of jobs_counts, so that schemas
// in one database never share it (and never meet the owner locks, keyed by
// the OID of jobs_owners).
const pgCountsFoldLock = `pg_try_advisory_xact_lock('jobs_counts'::regclass::oid::int, 0)`

var pgCountsStep = migrate.Step{
	Version: 10,
	Name:    "list indexes and counts",
	Stmts: append(append([]string{}, listIndexes...),
		`CREATE TABLE jobs_counts (
	queue TEXT NOT NULL,
	kind TEXT NOT NULL,
	status TEXT NOT NULL,
	n BIGINT NOT NULL,
	PRIMARY KEY (queue, kind, status)
)`,
		`CREATE TABLE jobs_count_changes (
	queue TEXT NOT NULL,
	kind TEXT NOT NULL,
	status TEXT NOT NULL,
	n BIGINT NOT NULL
)`,
		// Writers of jobs wait for the lock that CREATE INDEX took above,
		// so this count misses none.
		countsFillSQL,
		`CREATE FUNCTION jobs_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF `+pgCountsFoldLock+` THEN
		WITH d AS (DELETE FROM jobs_count_changes RETURNING queue, kind, status, n)
		INSERT INTO jobs_counts (queue, kind, status, n)
			SELECT queue, kind, status, SUM(n) FROM d GROUP BY queue, kind, status ORDER BY queue, kind, status
			ON CONFLICT (queue, kind, status) DO UPDATE SET n = jobs_counts.n + EXCLUDED.n;
	END IF;
END $$`,
		`CREATE FUNCTION jobs_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO jobs_count_changes (queue, kind, status, n) VALUES (NEW.queue, NEW.kind, NEW.status, 1);
	RETURN NULL;
END $$`,
		// Row by row, with a WHEN that the server tests without calling
		// the function: jobs are created pending, so a Create pays for
		// no transition table.
		`CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs
	FOR EACH ROW WHEN (NEW.finished_at IS NOT NULL) EXECUTE FUNCTION jobs_counts_insert()`,
		`CREATE FUNCTION jobs_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	-- Claims, heartbeats and progress touch no finished job: a look at
	-- both tables costs less than the join below.
	IF NOT EXISTS (SELECT 1 FROM jobs_new WHERE finished_at IS NOT NULL)
		AND NOT EXISTS (SELECT 1 FROM jobs_old WHERE finished_at IS NOT NULL) THEN
		RETURN NULL;
	END IF;
	INSERT INTO jobs_count_changes (queue, kind, status, n)
		SELECT c.queue, c.kind, c.status, SUM(c.n)
		FROM jobs_new n JOIN jobs_old o ON o.id = n.id,
			LATERAL (VALUES (n.queue, n.kind, n.status, 1, n.finished_at IS NOT NULL),
				(o.queue, o.kind, o.status, -1, o.finished_at IS NOT NULL)) AS c(queue, kind, status, n, finished)
		WHERE c.finished AND (n.status <> o.status OR n.queue <> o.queue OR n.kind <> o.kind)
		GROUP BY c.queue, c.kind, c.status HAVING SUM(c.n) <> 0;
	IF FOUND AND random() < 0.03 THEN
		PERFORM jobs_counts_fold();
	END IF;
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_counts_update AFTER UPDATE ON jobs
	REFERENCING OLD TABLE AS jobs_old NEW TABLE AS jobs_new
	FOR EACH STATEMENT EXECUTE FUNCTION jobs_counts_update()`,
		`CREATE FUNCTION jobs_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO jobs_count_changes (queue, kind, status, n)
		SELECT queue, kind, status, -COUNT(*) FROM jobs_old WHERE finished_at IS NOT NULL GROUP BY queue, kind, status;
	IF FOUND AND random() < 0.03 THEN
		PERFORM jobs_counts_fold();
	END IF;
	RETURN NULL;
END $$`,
		// Output too: a job deleted by any statement leaves no items.
		`CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs
	REFERENCING OLD TABLE AS jobs_old
	FOR EACH STATEMENT EXECUTE FUNCTION jobs_counts_delete()`,
	),
}
