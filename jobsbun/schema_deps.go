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
//   - jobs_depends_on(job_id, ids): a job's dependencies, a JSON array of
//     IDs, returned by Get, in a table of its own: a batch has thousands,
//     and SQLite rewrites a whole row, overflow pages included, at each
//     update (each end of one of the batch's jobs updates the batch), and
//     reads through them to any column stored after; deleted with the job
//     (trigger jobs_depends_on_delete); jobs.run_anyway;
//   - jobs.deps_left: how many of a waiting job's dependencies have not
//     ended;
//   - jobs.has_dependents: set on a job when a job that waits for it is
//     created, so that the trigger below costs nothing to the end of a
//     job that has none (its condition reads the row alone);
//   - jobs_deps(parent_id, job_id): one row per dependency that has not
//     ended, deleted when it ends;
//   - jobs_waiting_idx: the waiting jobs, for Stats and List;
//   - batches: jobs.batch marks a batch, jobs.batch_id names the batch of
//     one of its jobs (jobs_batch_idx), deps_total and deps_failed count
//     a job's dependencies and those that did not succeed; the trigger
//     jobs_batch_progress (on PostgreSQL, jobs_deps_ended) moves a waiting
//     batch's progress by each change of one of its jobs' share (its
//     fraction, 1 once ended) divided by their number, and
//     jobs_batch_cancel cancels the unfinished jobs of a waiting batch
//     that is canceled.
//
// The row triggers name finished_at, which every end sets (a finished job
// has one: jobs_finished_check) and a claim does not, so that a claim, the
// most frequent update, runs none of them (SQLite calls each trigger of an
// UPDATE's columns for every row, and its condition is tested inside).
//
// The trigger jobs_deps_ended runs in the transaction of every write that
// ends a job with dependents (Finish, a cancel, a rescue, SQL of one's
// own): each dependent still waiting counts one fewer dependency left, and
// becomes pending at none, or, when the job did not succeed and the
// dependent does not run anyway, is canceled, naming it. On PostgreSQL it
// is a statement trigger (pgDepsEndedFunc) that resolves a cascade in
// rounds and locks the dependents in ID order; the row lock that the
// count takes on a dependent makes two ends at the same instant count one
// after the other, so the dependent becomes pending once. SQLite has one
// writer, and runs no trigger from within itself (unless the connection
// enables recursive triggers), so its row trigger walks the whole cascade
// at once: it gathers the jobs to cancel into jobs_deps_cascade (the
// ended job, and the waiting jobs that do not run anyway reached through
// jobs being canceled, each with the job it depends on that cancels it),
// cancels them, counts the ended dependencies of the waiting jobs that
// depend on any of them, and empties the table; while it is not
// empty, the trigger does not start again for the jobs it cancels. Its
// joins start from jobs_deps_cascade (CROSS JOIN fixes SQLite's order):
// a plan that scanned jobs_deps, one row per open dependency, made each
// end cost as much as every open dependency of every job. A job
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
		`ALTER TABLE jobs ADD COLUMN run_anyway BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE jobs ADD COLUMN has_dependents BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE jobs ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN deps_total INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN deps_failed INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE jobs ADD COLUMN batch BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE jobs ADD COLUMN batch_id ` + idType,
		`CREATE INDEX jobs_waiting_idx ON jobs (queue, kind) WHERE status = 'waiting'`,
		`CREATE INDEX jobs_batch_idx ON jobs (batch_id) WHERE batch_id IS NOT NULL`,
		`CREATE TABLE jobs_depends_on (
	job_id ` + idType + ` NOT NULL PRIMARY KEY,
	ids TEXT NOT NULL
)`,
	}
}

// The SQL expressions that the triggers share. A job of a batch counts
// as its progress fraction until it has ended, then as 1; a batch without
// a callback ends when its last job does (batchEnds).
const (
	endedNew    = "(NEW.status = 'succeeded' OR NEW.status = 'failed' OR NEW.status = 'canceled')"
	endedOld    = "(OLD.status = 'succeeded' OR OLD.status = 'failed' OR OLD.status = 'canceled')"
	shareNew    = "(CASE WHEN " + endedNew + " THEN 1.0 ELSE NEW.progress_fraction END)"
	shareOld    = "(CASE WHEN " + endedOld + " THEN 1.0 ELSE OLD.progress_fraction END)"
	batchEnds   = "(batch AND kind = '" + jobs.BatchKind + "')"
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
		// One trigger for both outcomes (SQLite calls each trigger of
		// the UPDATE's columns for each row it writes): the end of a job
		// that succeeded cancels nothing and costs one count; the
		// statements of a cascade find the cascade table empty then.
		`CREATE TRIGGER jobs_deps_ended AFTER UPDATE OF finished_at ON jobs
	WHEN NEW.has_dependents AND ` + endedNew + `
		AND (OLD.status = 'waiting' OR OLD.status = 'pending' OR OLD.status = 'running')
		AND NOT EXISTS (SELECT 1 FROM jobs_deps_cascade) BEGIN
	UPDATE jobs SET
		status = CASE WHEN deps_left > 1 THEN 'waiting'
			WHEN ` + batchEnds + ` THEN CASE WHEN deps_failed > 0 THEN 'failed' ELSE 'succeeded' END
			ELSE 'pending' END,
		error = CASE WHEN deps_left <= 1 AND ` + batchEnds + ` AND deps_failed > 0
			THEN deps_failed || ' of ' || deps_total || ' jobs did not succeed' ELSE error END,
		finished_at = CASE WHEN deps_left <= 1 AND ` + batchEnds + ` THEN NEW.finished_at ELSE finished_at END,
		progress_fraction = CASE WHEN deps_left <= 1 AND batch THEN 1.0 ELSE progress_fraction END,
		deps_left = deps_left - 1, fair_rank = -1, updated_at = NEW.updated_at
	WHERE NEW.status = 'succeeded' AND status = 'waiting' AND id IN (SELECT job_id FROM jobs_deps WHERE parent_id = NEW.id);
	INSERT INTO jobs_deps_cascade (id, via)
		WITH RECURSIVE c(id, via) AS (
			SELECT NEW.id, NULL WHERE NEW.status <> 'succeeded'
			UNION
			SELECT e.job_id, e.parent_id FROM c JOIN jobs_deps e ON e.parent_id = c.id JOIN jobs d ON d.id = e.job_id
			WHERE d.status = 'waiting' AND NOT d.run_anyway)
		SELECT id, MIN(via) FROM c GROUP BY id;
	UPDATE jobs SET status = 'canceled',
		error = (SELECT 'dependency ' || c.via || ' ' || CASE WHEN c.via = NEW.id THEN NEW.status ELSE 'canceled' END
			FROM jobs_deps_cascade c WHERE c.id = jobs.id),
		finished_at = NEW.finished_at, updated_at = NEW.updated_at
	WHERE id IN (SELECT id FROM jobs_deps_cascade WHERE via IS NOT NULL);
	UPDATE jobs SET
		status = CASE WHEN deps_left > x.n THEN 'waiting'
			WHEN ` + batchEnds + ` THEN 'failed'
			ELSE 'pending' END,
		error = CASE WHEN deps_left <= x.n AND ` + batchEnds + `
			THEN (deps_failed + x.n) || ' of ' || deps_total || ' jobs did not succeed' ELSE error END,
		finished_at = CASE WHEN deps_left <= x.n AND ` + batchEnds + ` THEN NEW.finished_at ELSE finished_at END,
		progress_fraction = CASE WHEN deps_left <= x.n AND batch THEN 1.0 ELSE progress_fraction END,
		deps_left = deps_left - x.n, deps_failed = deps_failed + x.n,
		fair_rank = -1, updated_at = NEW.updated_at
	FROM (SELECT e.job_id AS jid, COUNT(*) AS n
		FROM jobs_deps_cascade c CROSS JOIN jobs_deps e ON e.parent_id = c.id GROUP BY e.job_id) AS x
	WHERE jobs.id = x.jid AND jobs.status = 'waiting';
	DELETE FROM jobs_deps WHERE parent_id = NEW.id;
	DELETE FROM jobs_deps WHERE parent_id IN (SELECT id FROM jobs_deps_cascade);
	DELETE FROM jobs_deps_cascade;
END`,
		`CREATE TRIGGER jobs_depends_on_delete AFTER DELETE ON jobs WHEN OLD.deps_total > 0 BEGIN
	DELETE FROM jobs_depends_on WHERE job_id = OLD.id;
END`,
		// A change of a job's share moves its batch, and the batch's
		// batch, up the waiting batches: SQLite would not run this
		// trigger again for the batch it updates.
		`CREATE TRIGGER jobs_batch_progress AFTER UPDATE OF progress_fraction, finished_at ON jobs
	WHEN NEW.batch_id IS NOT NULL AND ` + shareNew + ` <> ` + shareOld + ` BEGIN
	UPDATE jobs SET progress_fraction = MAX(0.0, MIN(1.0, progress_fraction + x.d))
	FROM (WITH RECURSIVE up(id, d) AS (
			SELECT b.id, (` + shareNew + ` - ` + shareOld + `) / b.deps_total FROM jobs b
			WHERE b.id = NEW.batch_id AND b.status = 'waiting' AND b.deps_total > 0
			UNION ALL
			SELECT p.id, up.d / p.deps_total FROM up CROSS JOIN jobs c ON c.id = up.id CROSS JOIN jobs p ON p.id = c.batch_id
			WHERE p.status = 'waiting' AND p.deps_total > 0)
		SELECT id, d FROM up) AS x
	WHERE jobs.id = x.id;
END`,
		`CREATE TRIGGER jobs_batch_cancel AFTER UPDATE OF finished_at ON jobs
	WHEN NEW.batch AND NEW.status = 'canceled' AND OLD.status = 'waiting' BEGIN
	` + batchCancel + `;
END`}),
	Func: sqliteAdmitWaiting,
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
