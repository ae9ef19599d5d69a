package jobsbun

import (
	"github.com/jobsmith/jobs/internal/migrate"
)

// What keeps List, Stats and Queues cheap as finished jobs pile up
// (retention keeps a week of them: millions of rows).
//
// List: two partial indexes on finished rows only, so that creating,
// claiming and retrying a job never touch them (only a finish adds an entry
// and a prune removes it):
//
//   - jobs_list_status_idx (status, id): a List filtered by status;
//   - jobs_list_kind_idx (kind, status, id): by kind, or kind and status.
//
// List reads each status it asks for as a range of its own, newest first,
// and merges them (list.go); pending and running rows, few by nature, are
// read through the claim and rescue indexes.
//
// Counts: jobs_counts(queue, kind, status, n) holds how many finished jobs
// there are of each queue, kind and terminal status; pending and running
// jobs are counted live through their partial indexes. Triggers keep the
// table exact in the transaction of every write, whoever makes it (Finish,
// RequestCancel, RescueExpired, Prune, or SQL of its own): a row that
// becomes finished adds one, one that stops being finished (deleted, or set
// pending again) takes one away. On SQLite, which has one writer at a time,
// the triggers update jobs_counts itself. On PostgreSQL that would make
// every finishing transaction of every process wait for the one before on
// the same counter row, and take those rows in any order (deadlocks), so a
// statement-level trigger appends the statement's net change per queue,
// kind and status to jobs_count_changes, a table that only grows, and
// jobs_counts_fold() moves the changes into jobs_counts. The triggers call
// it after about one write in thirty, and it gives way at once when
// another transaction is folding (an advisory lock keyed by the table's
// OID), so that the readers, which add the pending changes to the counts,
// never sum more than a few hundred rows.

var sqliteCountsStep = migrate.Step{
	Version: 4,
	Name:    "list indexes and counts",
	Stmts: []string{
		`CREATE INDEX jobs_list_status_idx ON jobs (status, id) WHERE finished_at IS NOT NULL`,
		`CREATE INDEX jobs_list_kind_idx ON jobs (kind, status, id) WHERE finished_at IS NOT NULL`,
		`CREATE TABLE jobs_counts (
	queue TEXT NOT NULL,
	kind TEXT NOT NULL,
	status TEXT NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (queue, kind, status)
) WITHOUT ROWID`,
		`INSERT INTO jobs_counts (queue, kind, status, n)
	SELECT queue, kind, status, COUNT(*) FROM jobs WHERE finished_at IS NOT NULL GROUP BY queue, kind, status`,
		`CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs WHEN NEW.finished_at IS NOT NULL BEGIN
	INSERT INTO jobs_counts (queue, kind, status, n) VALUES (NEW.queue, NEW.kind, NEW.status, 1)
		ON CONFLICT (queue, kind, status) DO UPDATE SET n = n + 1;
END`,
		`CREATE TRIGGER jobs_counts_update AFTER UPDATE OF status, queue, kind ON jobs
	WHEN (OLD.finished_at IS NOT NULL OR NEW.finished_at IS NOT NULL)
		AND (OLD.status <> NEW.status OR OLD.queue <> NEW.queue OR OLD.kind <> NEW.kind) BEGIN
	UPDATE jobs_counts SET n = n - 1
		WHERE OLD.finished_at IS NOT NULL AND queue = OLD.queue AND kind = OLD.kind AND status = OLD.status;
	INSERT INTO jobs_counts (queue, kind, status, n) SELECT NEW.queue, NEW.kind, NEW.status, 1
		WHERE NEW.finished_at IS NOT NULL
		ON CONFLICT (queue, kind, status) DO UPDATE SET n = n + 1;
END`,
		`CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs WHEN OLD.finished_at IS NOT NULL BEGIN
	UPDATE jobs_counts SET n = n - 1 WHERE queue = OLD.queue AND kind = OLD.kind AND status = OLD.status;
END`,
	},
}

// pgCountsFoldLock is the try-lock of jobs_counts_fold: a transaction-level
// advisory lock whose first key is the OID of jobs_counts, so that schemas
// in one database never share it (and never meet the owner locks, keyed by
// the OID of jobs_owners).
const pgCountsFoldLock = `pg_try_advisory_xact_lock('jobs_counts'::regclass::oid::int, 0)`

var pgCountsStep = migrate.Step{
	Version: 6,
	Name:    "list indexes and counts",
	Stmts: []string{
		`CREATE INDEX jobs_list_status_idx ON jobs (status, id) WHERE finished_at IS NOT NULL`,
		`CREATE INDEX jobs_list_kind_idx ON jobs (kind, status, id) WHERE finished_at IS NOT NULL`,
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
		// The migration's lock on jobs (CREATE TRIGGER below) holds
		// writers back until it commits, so this count misses none.
		`INSERT INTO jobs_counts (queue, kind, status, n)
	SELECT queue, kind, status, COUNT(*) FROM jobs WHERE finished_at IS NOT NULL GROUP BY queue, kind, status`,
		`CREATE FUNCTION jobs_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF ` + pgCountsFoldLock + ` THEN
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
		`CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs
	FOR EACH ROW WHEN (NEW.finished_at IS NOT NULL) EXECUTE FUNCTION jobs_counts_insert()`,
		`CREATE FUNCTION jobs_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
		`CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs
	REFERENCING OLD TABLE AS jobs_old
	FOR EACH STATEMENT EXECUTE FUNCTION jobs_counts_delete()`,
	},
}
