package jobsbun

import (
	"context"
	"errors"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs/internal/migrate"
	"github.com/uptrace/bun"
)

// The schema of the jobs table (and of the output table, schema_output.go), one list of migration steps per dialect.
// Steps are append-only: a released step never changes; later versions add
// steps. Invariants live in CHECK constraints so that no code path (ours or
// a user's SQL) can store an impossible job.
//
// Indexes, each named after the query it serves:
//   - jobs_claim_idx: partial on pending rows, ordered like the claim
//     (priority DESC, run_at, id), then queue and kind (rebuilt by the
//     flow-control step with fair_rank after priority and the
//     concurrency key last: schema_limits.go), so that a claim
//     walks the index in order, filters queues and kinds without reading
//     rows, and stops after LIMIT matches (a leading queue column would make
//     a claim over all queues, the runner's default, read and sort every
//     pending row);
//   - jobs_unique_key_idx: unique on unique_key where set (idempotent create);
//   - jobs_rescue_idx: running rows by lease expiry (the rescuer);
//   - jobs_cancel_idx: partial on running rows with a cancel request, by
//     owner (CancelRequests, polled often);
//   - jobs_prune_idx: finished rows by finished_at (Prune);
//   - the primary key: List, newest first (IDs are UUIDv7);
//   - jobs_list_idx: finished rows by kind, status and ID (List filtered
//     by status or kind: schema_counts.go).

// schemaChecks are the CHECK constraints shared by both dialects. They test
// status with = and OR, never IN: SQLite evaluates an IN list in a CHECK by
// building a temporary table for every row written (an OpenEphemeral inside
// the per-row loop of the insert's bytecode; TestSQLiteWritesBuildNoTemporaryTables
// guards it), a large share of the cost of a batch INSERT.
//
// Before any release, step 1 changed once, from IN lists to these
// equivalent tests; a database created before that keeps the IN lists,
// which accept and refuse the same rows.
const schemaChecks = `
	CONSTRAINT jobs_status_check CHECK (status = 'pending' OR status = 'running' OR status = 'succeeded' OR status = 'failed' OR status = 'canceled'),
	CONSTRAINT jobs_progress_check CHECK (progress_fraction >= 0 AND progress_fraction <= 1),
	CONSTRAINT jobs_max_attempts_check CHECK (max_attempts >= 1),
	CONSTRAINT jobs_attempt_check CHECK (attempt >= 0),
	CONSTRAINT jobs_finished_check CHECK ((status = 'pending' OR status = 'running') = (finished_at IS NULL))`

// schemaIndexes are the index statements shared by both dialects.
var schemaIndexes = []string{
	`CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at, id, queue, kind) WHERE status = 'pending'`,
	`CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key) WHERE unique_key IS NOT NULL`,
	`CREATE INDEX jobs_rescue_idx ON jobs (lease_expires_at) WHERE status = 'running'`,
	`CREATE INDEX jobs_cancel_idx ON jobs (lease_owner) WHERE status = 'running' AND cancel_requested`,
	`CREATE INDEX jobs_prune_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL`,
}

var sqliteSteps = []migrate.Step{{
	Version: 1,
	Name:    "create jobs",
	Stmts: append([]string{`CREATE TABLE jobs (
	id TEXT NOT NULL PRIMARY KEY,
	kind TEXT NOT NULL,
	queue TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'pending',
	priority INTEGER NOT NULL DEFAULT 0,
	payload TEXT NOT NULL,
	result TEXT,
	progress_fraction REAL NOT NULL DEFAULT 0,
	progress_message TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	errors TEXT,
	attempt INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	timeout INTEGER NOT NULL DEFAULT 0,
	unique_key TEXT,
	cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
	run_at TIMESTAMP NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	started_at TIMESTAMP,
	finished_at TIMESTAMP,
	lease_owner TEXT,
	lease_token TEXT,
	lease_expires_at TIMESTAMP,` + schemaChecks + `
)`}, schemaIndexes...),
}, sqliteOutputStep, sqliteQueuesStep, sqliteSchedulesStep, sqliteMetadataStep, sqliteLimitStep,
	sqliteFairHeadStep, sqliteCountsStep, sqliteDepsStep} // schema_output.go, schema_queues.go, schema_schedules.go, schema_metadata.go, schema_limits.go, schema_counts.go, schema_deps.go

var pgSteps = []migrate.Step{{
	Version: 1,
	Name:    "create jobs",
	Stmts: append([]string{`CREATE TABLE jobs (
	id UUID NOT NULL PRIMARY KEY,
	kind TEXT NOT NULL,
	queue TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'pending',
	priority INTEGER NOT NULL DEFAULT 0,
	payload JSONB NOT NULL,
	result JSONB,
	progress_fraction DOUBLE PRECISION NOT NULL DEFAULT 0,
	progress_message TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	errors JSONB,
	attempt INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	timeout BIGINT NOT NULL DEFAULT 0,
	unique_key TEXT,
	cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
	run_at TIMESTAMPTZ NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	started_at TIMESTAMPTZ,
	finished_at TIMESTAMPTZ,
	lease_owner TEXT,
	lease_token TEXT,
	lease_expires_at TIMESTAMPTZ,` + schemaChecks + `
)`}, schemaIndexes...),
}, pgNotifyStep, pgOutputStep, pgOwnersStep, pgQueuesStep, pgSchedulesStep, pgMetadataStep,
	pgLimitStep, pgFairHeadStep, pgCountsStep, pgDepsStep} // schema_notify.go, schema_output.go, schema_owners.go, schema_queues.go, schema_schedules.go, schema_metadata.go, schema_limits.go, schema_counts.go, schema_deps.go, schema_deps_pg.go

// steps returns the migration steps of the dialect.
func (d sqlDialect) steps() []migrate.Step {
	if d.pg {
		return pgSteps
	}
	return sqliteSteps
}

// migrateSchema applies the dialect's steps with the repository's write
// path (serialised and busy-retried on SQLite).
func migrateSchema(ctx context.Context, r *Repository) error {
	const op = "migrate"
	runTx := func(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
		return r.retryBusy(ctx, true, func(ctx context.Context, db bun.IDB) error {
			return fn(ctx, db.(bun.Tx))
		})
	}
	err := migrate.Run(ctx, runTx, r.d.lockMigrations(), r.d.steps())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, migrate.ErrTooNew):
		return &jobs.Error{Code: jobs.ErrInvalidArgument, Op: op, Msg: "database schema is newer than this library", Err: err}
	}
	return storageError(op, uuid.Nil, err)
}
