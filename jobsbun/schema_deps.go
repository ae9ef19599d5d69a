package jobsbun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/migrate"
)

// The storage of dependencies between jobs (see [jobs.Job].DependsOn and
// deps.go):
//
//   - status 'waiting': a job whose dependencies have not all ended; the
//     two status checks of step 1 admit it (a waiting job is unfinished);
//   - jobs.depends_on: the job's dependencies, a JSON array of IDs (NULL
//     for none), returned by Get; jobs.run_anyway;
//   - jobs.deps_left: how many of a waiting job's dependencies have not
//     ended;
//   - jobs.has_dependents: set on a job when a job that waits for it is
//     created, so that the trigger below costs nothing to the end of a
//     job that has none (its condition reads the row alone);
//   - jobs_deps(parent_id, job_id): one row per dependency that has not
//     ended, deleted when it ends;
//   - jobs_waiting_idx: the waiting jobs, for Stats and List.
//
// The trigger jobs_deps_ended runs in the transaction of every write that
// ends a job with dependents (Finish, a cancel, a rescue, SQL of one's
// own): each dependent still waiting counts one fewer dependency left, and
// becomes pending at none, or, when the job did not succeed and the
// dependent does not run anyway, is canceled, naming it. On PostgreSQL the
// trigger handles one level and fires again for each dependent it cancels;
// the row lock that the decrement takes on the dependent makes two ends at
// the same instant count one after the other, so the dependent becomes
// pending once. SQLite runs no trigger from within itself (unless the
// connection enables recursive triggers), so its trigger walks the whole
// cascade at once: it gathers the jobs to cancel into jobs_deps_cascade
// (the ended job, and the waiting jobs that do not run anyway reached
// through jobs being canceled, each with the job it depends on that
// cancels it), cancels them, counts the ended dependencies of the waiting
// jobs that depend on any of them, and empties the table; while it is not
// empty, the trigger does not start again for the jobs it cancels. A job
// reached through two jobs being canceled is gathered once, naming one of
// them: the statement that fires a trigger imposes its conflict handling
// (UPDATE OR ROLLBACK included) on the trigger's statements, so they must
// not conflict.

// depsStatusChecks are the status checks of step 1 with 'waiting' added.
var depsStatusChecks = map[string]string{
	"jobs_status_check":   "CONSTRAINT jobs_status_check CHECK (status = 'waiting' OR status = 'pending' OR status = 'running' OR status = 'succeeded' OR status = 'failed' OR status = 'canceled')",
	"jobs_finished_check": "CONSTRAINT jobs_finished_check CHECK ((status = 'waiting' OR status = 'pending' OR status = 'running') = (finished_at IS NULL))",
}

// depsColumns are the columns of dependencies and batches, shared by both
// dialects (batch_id's type is the dialect's ID type).
func depsColumns(idType string) []string {
	return []string{
		`ALTER TABLE jobs ADD COLUMN depends_on TEXT`,
		`ALTER TABLE jobs ADD COLUMN run_anyway BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE jobs ADD COLUMN has_dependents BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE jobs ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN deps_total INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN deps_failed INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN batch BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE jobs ADD COLUMN batch_id ` + idType,
		`CREATE INDEX jobs_waiting_idx ON jobs (queue, kind) WHERE status = 'waiting'`,
		`CREATE INDEX jobs_batch_idx ON jobs (batch_id) WHERE batch_id IS NOT NULL`,
	}
}

// The SQL expressions that the triggers share. A job of a batch counts
// as its progress fraction until it has ended, then as 1; a batch without
// a callback ends when its last job does (batchEnds).
const (
	endedNew  = "(NEW.status = 'succeeded' OR NEW.status = 'failed' OR NEW.status = 'canceled')"
	endedOld  = "(OLD.status = 'succeeded' OR OLD.status = 'failed' OR OLD.status = 'canceled')"
	shareNew  = "(CASE WHEN " + endedNew + " THEN 1.0 ELSE NEW.progress_fraction END)"
	shareOld  = "(CASE WHEN " + endedOld + " THEN 1.0 ELSE OLD.progress_fraction END)"
	batchEnds = "(batch AND kind = '" + jobs.BatchKind + "')"
	// batchProgress has %s for the dialect's greatest and least.
	batchProgress = `UPDATE jobs SET progress_fraction = %s(0.0, %s(1.0, progress_fraction + (` + shareNew + ` - ` + shareOld + `) / deps_total))
		WHERE id = NEW.batch_id AND status = 'waiting' AND deps_total > 0`
	batchCancel = `UPDATE jobs SET
		status = CASE WHEN status = 'waiting' OR status = 'pending' THEN 'canceled' ELSE status END,
		finished_at = CASE WHEN status = 'waiting' OR status = 'pending' THEN NEW.finished_at ELSE finished_at END,
		cancel_requested = TRUE, updated_at = NEW.updated_at
		WHERE batch_id = NEW.id AND (status = 'waiting' OR status = 'pending' OR (status = 'running' AND NOT cancel_requested))`
)

var sqliteDepsStep = migrate.Step{
	Version: 9,
	Name:    "dependencies and batches",
	Stmts: slices.Concat(depsColumns("TEXT"), []string{
		`CREATE TABLE jobs_deps (
	parent_id TEXT NOT NULL,
	job_id TEXT NOT NULL,
	PRIMARY KEY (parent_id, job_id)
) WITHOUT ROWID`,
		`CREATE TABLE jobs_deps_cascade (
	id TEXT NOT NULL PRIMARY KEY,
	via TEXT
) WITHOUT ROWID`,
		`CREATE TRIGGER jobs_deps_ended AFTER UPDATE OF status ON jobs
	WHEN NEW.has_dependents AND ` + endedNew + `
		AND (OLD.status = 'waiting' OR OLD.status = 'pending' OR OLD.status = 'running')
		AND NOT EXISTS (SELECT 1 FROM jobs_deps_cascade) BEGIN
	INSERT INTO jobs_deps_cascade (id, via)
		WITH RECURSIVE c(id, via) AS (
			SELECT NEW.id, NULL
			UNION
			SELECT e.job_id, e.parent_id FROM c JOIN jobs_deps e ON e.parent_id = c.id JOIN jobs d ON d.id = e.job_id
			WHERE NEW.status <> 'succeeded' AND d.status = 'waiting' AND NOT d.run_anyway)
		SELECT id, MIN(via) FROM c GROUP BY id;
	UPDATE jobs SET status = 'canceled',
		error = (SELECT 'dependency ' || c.via || ' ' || CASE WHEN c.via = NEW.id THEN NEW.status ELSE 'canceled' END
			FROM jobs_deps_cascade c WHERE c.id = jobs.id),
		finished_at = NEW.finished_at, updated_at = NEW.updated_at
	WHERE id IN (SELECT id FROM jobs_deps_cascade WHERE via IS NOT NULL);
	UPDATE jobs SET
		status = CASE WHEN deps_left > x.n THEN 'waiting'
			WHEN ` + batchEnds + ` THEN CASE WHEN deps_failed + x.f > 0 THEN 'failed' ELSE 'succeeded' END
			ELSE 'pending' END,
		error = CASE WHEN deps_left <= x.n AND ` + batchEnds + ` AND deps_failed + x.f > 0
			THEN (deps_failed + x.f) || ' of ' || deps_total || ' jobs did not succeed' ELSE error END,
		finished_at = CASE WHEN deps_left <= x.n AND ` + batchEnds + ` THEN NEW.finished_at ELSE finished_at END,
		progress_fraction = CASE WHEN deps_left <= x.n AND batch THEN 1.0 ELSE progress_fraction END,
		deps_left = deps_left - x.n, deps_failed = deps_failed + x.f,
		fair_rank = -1, updated_at = NEW.updated_at
	FROM (SELECT e.job_id AS jid, COUNT(*) AS n, SUM(CASE WHEN c.id <> NEW.id OR NEW.status <> 'succeeded' THEN 1 ELSE 0 END) AS f
		FROM jobs_deps_cascade c JOIN jobs_deps e ON e.parent_id = c.id GROUP BY e.job_id) AS x
	WHERE jobs.id = x.jid AND jobs.status = 'waiting';
	DELETE FROM jobs_deps WHERE parent_id IN (SELECT id FROM jobs_deps_cascade);
	DELETE FROM jobs_deps_cascade;
END`,
		`CREATE TRIGGER jobs_batch_progress AFTER UPDATE OF progress_fraction, status ON jobs
	WHEN NEW.batch_id IS NOT NULL AND ` + shareNew + ` <> ` + shareOld + ` BEGIN
	` + fmt.Sprintf(batchProgress, "MAX", "MIN") + `;
END`,
		`CREATE TRIGGER jobs_batch_cancel AFTER UPDATE OF status ON jobs
	WHEN NEW.batch AND NEW.status = 'canceled' AND OLD.status = 'waiting' BEGIN
	` + batchCancel + `;
END`}),
	Func: sqliteAdmitWaiting,
}

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
		// The dependents are locked in ID order first, so that two ends
		// that share dependents take their locks in one order.
		`CREATE FUNCTION jobs_deps_ended() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	failed int := CASE WHEN NEW.status <> 'succeeded' THEN 1 ELSE 0 END;
BEGIN
	PERFORM 1 FROM jobs WHERE id IN (SELECT job_id FROM jobs_deps WHERE parent_id = NEW.id) AND status = 'waiting' ORDER BY id FOR UPDATE;
	WITH e AS (DELETE FROM jobs_deps WHERE parent_id = NEW.id RETURNING job_id)
	UPDATE jobs d SET
		status = CASE WHEN failed = 1 AND NOT d.run_anyway THEN 'canceled'
			WHEN d.deps_left > 1 THEN 'waiting'
			WHEN d.batch AND d.kind = '` + jobs.BatchKind + `' THEN CASE WHEN d.deps_failed + failed > 0 THEN 'failed' ELSE 'succeeded' END
			ELSE 'pending' END,
		error = CASE WHEN failed = 1 AND NOT d.run_anyway THEN 'dependency ' || NEW.id || ' ' || NEW.status
			WHEN d.deps_left <= 1 AND d.batch AND d.kind = '` + jobs.BatchKind + `' AND d.deps_failed + failed > 0
			THEN (d.deps_failed + failed) || ' of ' || d.deps_total || ' jobs did not succeed'
			ELSE d.error END,
		finished_at = CASE WHEN failed = 1 AND NOT d.run_anyway THEN NEW.finished_at
			WHEN d.deps_left <= 1 AND d.batch AND d.kind = '` + jobs.BatchKind + `' THEN NEW.finished_at END,
		progress_fraction = CASE WHEN d.deps_left <= 1 AND d.batch THEN 1.0 ELSE d.progress_fraction END,
		deps_left = d.deps_left - 1, deps_failed = d.deps_failed + failed,
		fair_rank = -1, updated_at = NEW.updated_at
	FROM e WHERE d.id = e.job_id AND d.status = 'waiting';
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_deps_ended AFTER UPDATE OF status ON jobs FOR EACH ROW
	WHEN (NEW.has_dependents AND NEW.status IN ('succeeded', 'failed', 'canceled') AND OLD.status IN ('waiting', 'pending', 'running'))
	EXECUTE FUNCTION jobs_deps_ended()`,
		`CREATE FUNCTION jobs_batch_progress() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	` + fmt.Sprintf(batchProgress, "GREATEST", "LEAST") + `;
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_batch_progress AFTER UPDATE OF progress_fraction, status ON jobs FOR EACH ROW
	WHEN (NEW.batch_id IS NOT NULL AND ` + shareNew + ` <> ` + shareOld + `)
	EXECUTE FUNCTION jobs_batch_progress()`,
		`CREATE FUNCTION jobs_batch_cancel() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	` + batchCancel + `;
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_batch_cancel AFTER UPDATE OF status ON jobs FOR EACH ROW
	WHEN (NEW.batch AND NEW.status = 'canceled' AND OLD.status = 'waiting')
	EXECUTE FUNCTION jobs_batch_cancel()`,
	}),
}

// sqliteAdmitWaiting replaces the two status checks of the jobs table by
// depsStatusChecks. SQLite cannot alter a constraint; its documented way
// to loosen one without copying the table is to edit the table's
// definition in sqlite_schema and raise the schema version, which is safe
// when every stored row meets the new constraint, as every row meets a
// looser one (https://www.sqlite.org/lang_altertable.html, "Making Other
// Kinds Of Table Schema Changes").
func sqliteAdmitWaiting(ctx context.Context, tx bun.Tx) error {
	var def string
	if err := tx.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").Scan(&def); err != nil {
		return err
	}
	for name, check := range depsStatusChecks {
		var err error
		if def, err = replaceConstraint(def, name, check); err != nil {
			return err
		}
	}
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return err
	}
	for _, stmt := range []string{
		"PRAGMA writable_schema = ON",
		"UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'jobs'",
		fmt.Sprintf("PRAGMA schema_version = %d", version+1),
		"PRAGMA writable_schema = OFF",
	} {
		var args []any
		if strings.Contains(stmt, "?") {
			args = []any{def}
		}
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return err
		}
	}
	return nil
}

// replaceConstraint replaces the constraint called name in the table
// definition def, from "CONSTRAINT name" to the parenthesis that closes its
// CHECK, by with.
func replaceConstraint(def, name, with string) (string, error) {
	start := strings.Index(def, "CONSTRAINT "+name+" ")
	if start < 0 {
		return "", errors.New("no constraint " + name + " in the jobs table")
	}
	open := strings.IndexByte(def[start:], '(')
	if open < 0 {
		return "", errors.New("constraint " + name + " has no check")
	}
	depth := 0
	for i := start + open; i < len(def); i++ {
		switch def[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return def[:start] + with + def[i+1:], nil
			}
		}
	}
	return "", errors.New("constraint " + name + " does not end")
}
