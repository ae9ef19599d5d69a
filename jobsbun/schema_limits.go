package jobsbun

import (
	"github.com/jobsmith/jobs/internal/migrate"
)

// The storage of flow control (see [jobs.Limit] and limit.go):
//
//   - jobs.concurrency_key: the job's key, '' for none;
//   - jobs_running_idx: running rows by kind, queue and key, so that a
//     limited claim counts the running jobs of its scopes from the index
//     alone (running rows are few: at most the workers of every process);
//   - job_starts(scope, ckey, started_at): one row per start of a job in a
//     rate-limited kind ("k:" + kind) or queue ("q:" + queue), read by
//     scope and time; a limited claim deletes the rows older than the
//     longest window (24h).
//
// The version numbers are those of this branch; steps are appended in
// merge order.

var sqliteLimitStep = migrate.Step{
	Version: 3,
	Name:    "flow control",
	Stmts: []string{
		`ALTER TABLE jobs ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX jobs_running_idx ON jobs (kind, queue, concurrency_key) WHERE status = 'running'`,
		`CREATE TABLE job_starts (
	scope TEXT NOT NULL,
	ckey TEXT NOT NULL,
	started_at TIMESTAMP NOT NULL
)`,
		`CREATE INDEX job_starts_idx ON job_starts (scope, started_at)`,
	},
}

var pgLimitStep = migrate.Step{
	Version: 4,
	Name:    "flow control",
	Stmts: []string{
		`ALTER TABLE jobs ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX jobs_running_idx ON jobs (kind, queue, concurrency_key) WHERE status = 'running'`,
		`CREATE TABLE job_starts (
	scope TEXT NOT NULL,
	ckey TEXT NOT NULL,
	started_at TIMESTAMPTZ NOT NULL
)`,
		`CREATE INDEX job_starts_idx ON job_starts (scope, started_at)`,
	},
}

func init() {
	sqliteSteps = append(sqliteSteps, sqliteLimitStep)
	pgSteps = append(pgSteps, pgLimitStep)
}
