package jobsbun

import (
	"slices"
	"strings"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/migrate"
)

// This file holds PostgreSQL's migration step of dependencies and batches
// and its trigger functions; schema_deps.go has the storage they share
// with SQLite's.

var pgDepsStep = migrate.Step{
	Version: 11,
	Name:    "dependencies and batches",
	Stmts: slices.Concat([]string{
		`ALTER TABLE jobs DROP CONSTRAINT jobs_status_check, DROP CONSTRAINT jobs_finished_check, ADD ` +
			depsStatusChecks["jobs_status_check"] + `, ADD ` + depsStatusChecks["jobs_finished_check"],
	}, depsColumns("UUID"), []string{
		`CREATE TABLE jobs_deps (
	parent_id UUID NOT NULL,
	job_id UUID NOT NULL,
	PRIMARY KEY (parent_id, job_id)
)`,
		pgDepsEndedFunc,
		pgClaimFuncLockFirst(),
		`CREATE FUNCTION jobs_depends_on_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	DELETE FROM jobs_depends_on WHERE job_id = OLD.id;
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_depends_on_delete AFTER DELETE ON jobs FOR EACH ROW
	WHEN (OLD.deps_total > 0) EXECUTE FUNCTION jobs_depends_on_delete()`,
		`CREATE TRIGGER jobs_deps_ended AFTER UPDATE ON jobs
	REFERENCING OLD TABLE AS jobs_old NEW TABLE AS jobs_new
	FOR EACH STATEMENT EXECUTE FUNCTION jobs_deps_ended()`,
		`CREATE FUNCTION jobs_batch_cancel() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	` + batchCancel + `;
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_batch_cancel AFTER UPDATE OF finished_at ON jobs FOR EACH ROW
	WHEN (NEW.batch AND NEW.status = 'canceled' AND OLD.status = 'waiting')
	EXECUTE FUNCTION jobs_batch_cancel()`,
	}),
}

// pgDepsEndedFunc creates the function of PostgreSQL's trigger
// jobs_deps_ended, which runs after every UPDATE statement of jobs. It
// looks for jobs that the statement ended and that have dependents (most
// statements have none: one pass over the statement's new rows), and
// resolves their dependents in rounds: it locks the waiting dependents of
// the round's ended jobs in ID order (so that two transactions that end
// jobs with dependents in common lock them in one order, and neither
// waits for the other in a cycle), deletes the edges, and updates each
// dependent once for all of its dependencies that ended in the round. The
// dependents that this ends (canceled, or a batch without a callback)
// and that have dependents make the next round: a cascade is a loop, not
// a recursion, so a chain of any length fits PostgreSQL's stack. While it
// runs, the trigger skips the statements it makes (the setting
// jobs.deps_resolving, local to the transaction), but for what follows.
//
// It also moves the progress of batches (SQLite's jobs_batch_progress): it
// adds the changes of the statement's jobs' shares to their waiting
// batches, each batch once, after locking, in ID order and in one
// statement, those batches and the waiting dependents of the jobs that
// the statement ended, which the resolution counts next. A row trigger
// locked each job's batch in the order of a store's rows, so that two
// stores of ends of jobs of the same two batches deadlocked (stores of 16
// ends of jobs of consecutive batches did in the real-process suite: the
// retried stores outlived their leases, and a callback ran twice). A batch
// whose progress it moves moves its own batch in turn: the trigger runs
// for that UPDATE too. One function for both keeps every UPDATE of jobs
// (claims, heartbeats) to one call of it and one pass over its rows.
var pgDepsEndedFunc = `CREATE FUNCTION jobs_deps_ended() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	ids uuid[];
	sts text[];
	fins timestamptz[];
	upds timestamptz[];
	bids uuid[];
	ds float8[];
	in_batch boolean;
	ended boolean;
BEGIN
	SELECT bool_or(batch_id IS NOT NULL), bool_or(has_dependents AND status IN ('succeeded', 'failed', 'canceled'))
	INTO in_batch, ended FROM jobs_new;
	IF in_batch THEN
		SELECT array_agg(x.id ORDER BY x.id), array_agg(x.d ORDER BY x.id) INTO bids, ds
		FROM (SELECT n.batch_id AS id, SUM(` + strings.ReplaceAll(shareNew, "NEW.", "n.") + ` - ` + strings.ReplaceAll(shareOld, "OLD.", "o.") + `) AS d
			FROM jobs_new n JOIN jobs_old o ON o.id = n.id
			WHERE n.batch_id IS NOT NULL
			GROUP BY n.batch_id) x
		WHERE x.d <> 0;
	END IF;
	IF ended AND current_setting('jobs.deps_resolving', true) IS DISTINCT FROM 'on' THEN
		SELECT array_agg(n.id ORDER BY n.id), array_agg(n.status ORDER BY n.id),
			array_agg(n.finished_at ORDER BY n.id), array_agg(n.updated_at ORDER BY n.id)
		INTO ids, sts, fins, upds
		FROM jobs_new n JOIN jobs_old o ON o.id = n.id
		WHERE n.has_dependents AND n.status IN ('succeeded', 'failed', 'canceled') AND o.status IN ('waiting', 'pending', 'running');
	END IF;
	IF bids IS NOT NULL THEN
		PERFORM 1 FROM jobs WHERE id IN (
				SELECT unnest(bids)
				UNION SELECT e.job_id FROM jobs_deps e WHERE e.parent_id = ANY(ids))
			AND status = 'waiting' ORDER BY id FOR UPDATE;
		UPDATE jobs b SET progress_fraction = GREATEST(0.0, LEAST(1.0, b.progress_fraction + x.d / b.deps_total))
		FROM unnest(bids, ds) AS x(id, d)
		WHERE b.id = x.id AND b.status = 'waiting' AND b.deps_total > 0;
	END IF;
	IF ids IS NULL THEN
		RETURN NULL;
	END IF;
	PERFORM set_config('jobs.deps_resolving', 'on', true);
	WHILE ids IS NOT NULL LOOP
		PERFORM 1 FROM jobs WHERE id IN (SELECT job_id FROM jobs_deps WHERE parent_id = ANY(ids)) AND status = 'waiting'
			ORDER BY id FOR UPDATE;
		WITH p AS (SELECT * FROM unnest(ids, sts, fins, upds) AS p(id, status, fin, upd)),
		e AS (DELETE FROM jobs_deps WHERE parent_id = ANY(ids) RETURNING parent_id, job_id),
		x AS (SELECT e.job_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE p.status <> 'succeeded') AS f,
				MIN(p.id::text || ' ' || p.status) FILTER (WHERE p.status <> 'succeeded') AS via,
				MAX(p.fin) AS fin, MAX(p.upd) AS upd
			FROM e JOIN p ON p.id = e.parent_id GROUP BY e.job_id),
		u AS (UPDATE jobs d SET
				status = CASE WHEN x.f > 0 AND NOT d.run_anyway THEN 'canceled'
					WHEN d.deps_left > x.n THEN 'waiting'
					WHEN d.batch AND d.kind = '` + jobs.BatchKind + `' THEN CASE WHEN d.deps_failed + x.f > 0 THEN 'failed' ELSE 'succeeded' END
					ELSE 'pending' END,
				error = CASE WHEN x.f > 0 AND NOT d.run_anyway THEN 'dependency ' || x.via
					WHEN d.deps_left <= x.n AND d.batch AND d.kind = '` + jobs.BatchKind + `' AND d.deps_failed + x.f > 0
					THEN (d.deps_failed + x.f) || ' of ' || d.deps_total || ' jobs did not succeed'
					ELSE d.error END,
				finished_at = CASE WHEN x.f > 0 AND NOT d.run_anyway THEN x.fin
					WHEN d.deps_left <= x.n AND d.batch AND d.kind = '` + jobs.BatchKind + `' THEN x.fin END,
				progress_fraction = CASE WHEN d.deps_left <= x.n AND d.batch THEN 1.0 ELSE d.progress_fraction END,
				deps_left = d.deps_left - x.n, deps_failed = d.deps_failed + x.f,
				fair_rank = -1, updated_at = x.upd
			FROM x WHERE d.id = x.job_id AND d.status = 'waiting'
			RETURNING d.id, d.status, d.finished_at, d.updated_at, d.has_dependents)
		SELECT array_agg(u.id ORDER BY u.id), array_agg(u.status ORDER BY u.id),
			array_agg(u.finished_at ORDER BY u.id), array_agg(u.updated_at ORDER BY u.id)
		INTO ids, sts, fins, upds
		FROM u WHERE u.has_dependents AND u.status IN ('succeeded', 'failed', 'canceled');
	END LOOP;
	PERFORM set_config('jobs.deps_resolving', '', true);
	RETURN NULL;
END $$`

// pgClaimFuncLockFirst replaces jobs_limit_claim (claim_limit_pg.go) by
// the same function with its promotion of the jobs that came due moved
// after the advisory locks of its limits, which are keyed by the table. Promoting first, a claim held
// the rows it ranked while it waited for a lock that another claim held,
// which could want those rows for its own UPDATE: a deadlock, broken by
// PostgreSQL after a second, that jobs that stop waiting for their
// dependencies (ranked by the promotion, like retries that come due)
// made frequent.
func pgClaimFuncLockFirst() string {
	promote := "\tIF EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND fair_rank < 0 AND run_at <= now()) THEN\n\t\t" +
		promoteStmt(sqlDialect{pg: true}, "now()") + ";\n\tEND IF;\n"
	locks := "\tFOR i IN 1 .. ns LOOP\n\t\tPERFORM pg_advisory_xact_lock(hashtextextended('jobs limit ' || scopes[i], 7428513690412));\n\tEND LOOP;\n"
	// The locks' first key is the OID of the jobs table (the second a
	// hash of the scope), as for the other advisory locks of jobsbun, so
	// that schemas in one database never share them: they did, and every
	// limited claim of every schema waited for the others.
	schemaLocks := "\tFOR i IN 1 .. ns LOOP\n\t\tPERFORM pg_advisory_xact_lock('jobs'::regclass::oid::int, hashtext('jobs limit ' || scopes[i]));\n\tEND LOOP;\n"
	f := pgClaimFunc
	if !strings.Contains(f, promote+locks) {
		panic("jobsbun: jobs_limit_claim does not promote before its locks")
	}
	return "CREATE OR REPLACE" + strings.TrimPrefix(strings.Replace(f, promote+locks, schemaLocks+promote, 1), "CREATE")
}
