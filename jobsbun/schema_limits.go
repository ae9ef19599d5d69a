package jobsbun

import (
	"slices"
	"strings"

	"github.com/jobsmith/jobs/internal/migrate"
)

// The storage of flow control (see [jobs.Limit] and limit.go):
//
//   - jobs.concurrency_key: the job's key, '' for none;
//   - no index of its own for counting running jobs: a limited claim
//     counts them through jobs_rescue_idx, whose rows are exactly the
//     running ones (few: at most the workers of every process), so that
//     no claim and no finish pays for one more index;
//   - job_starts(scope, ckey, started_at): one row per start of a job in a
//     rate-limited kind ("k:" + kind) or queue ("q:" + queue), read by
//     scope and time; a limited claim deletes the rows older than the
//     longest window (24h);
//   - jobs.fair_rank: the job's turn among concurrency keys (fair.go), -1
//     until a job that was not due is ranked; the claim index is rebuilt
//     to walk priority, rank, RunAt and ID over ranked jobs, and carries
//     the key for the walk of limited claims; jobs_promote_idx: the
//     unranked jobs by RunAt;
//   - jobs_fair_idx: pending rows by queue, key and rank (a key's last
//     rank, and the head of the jobs without a key); jobs_fair_head_idx:
//     pending rows with a key by queue, rank and RunAt (the smallest rank
//     that is due; since the fair head step).

var sqliteLimitStep = migrate.Step{
	Version: 6,
	Name:    "flow control",
	Stmts: append([]string{
		`ALTER TABLE jobs ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE job_starts (
	scope TEXT NOT NULL,
	ckey TEXT NOT NULL,
	started_at TIMESTAMP NOT NULL
)`,
		`CREATE INDEX job_starts_idx ON job_starts (scope, started_at)`,
	}, fairStmts...),
}

var pgLimitStep = migrate.Step{
	Version: 8,
	Name:    "flow control",
	Stmts: append([]string{
		`ALTER TABLE jobs ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE job_starts (
	scope TEXT NOT NULL,
	ckey TEXT NOT NULL,
	started_at TIMESTAMPTZ NOT NULL
)`,
		`CREATE INDEX job_starts_idx ON job_starts (scope, started_at)`,
		pgClaimFunc,    // claim_limit_pg.go
		pgFairBaseFunc, // create_pg.go
	}, fairStmts...),
}

// fairStmts are the fairness statements shared by both dialects.
var fairStmts = []string{
	`ALTER TABLE jobs ADD COLUMN fair_rank BIGINT NOT NULL DEFAULT 0`,
	`DROP INDEX jobs_claim_idx`,
	// Pending jobs not due when they were created or retried have rank -1
	// until a claim ranks them (fair.go): the claim index leaves them out,
	// so that claims never step over jobs that wait for a later RunAt.
	`CREATE INDEX jobs_claim_idx ON jobs (priority DESC, fair_rank, run_at, id, queue, kind, concurrency_key) WHERE status = 'pending' AND fair_rank > -1`,
	`CREATE INDEX jobs_promote_idx ON jobs (run_at) WHERE status = 'pending' AND fair_rank < 0`,
	// The claims state "fair_rank > -1", these indexes "fair_rank >= 0":
	// the same rows, but neither planner proves one from the other, so a
	// claim never takes these indexes for its queue filter.
	`CREATE INDEX jobs_fair_idx ON jobs (queue, concurrency_key, fair_rank) WHERE status = 'pending' AND fair_rank >= 0`,
	`CREATE INDEX jobs_fair_head_idx ON jobs (queue, fair_rank, run_at) WHERE status = 'pending' AND fair_rank >= 0`,
}

// The fair head step takes the jobs without a key out of
// jobs_fair_head_idx: V reads their head from jobs_fair_idx, under the empty key
// (headRankSQL), so that creating and claiming such a job, the common
// case, costs one index entry fewer. On PostgreSQL the functions that
// compute V are replaced with their new text.
var (
	sqliteFairHeadStep = migrate.Step{Version: 7, Name: "fair head of keyed jobs", Stmts: fairHeadStmts}
	pgFairHeadStep     = migrate.Step{Version: 9, Name: "fair head of keyed jobs", Stmts: append(slices.Clone(fairHeadStmts),
		orReplace(pgFairBaseFunc), orReplace(pgClaimFunc))}
)

var fairHeadStmts = []string{
	`DROP INDEX jobs_fair_head_idx`,
	`CREATE INDEX jobs_fair_head_idx ON jobs (queue, fair_rank, run_at) WHERE status = 'pending' AND fair_rank >= 0 AND concurrency_key <> ''`,
}

// orReplace makes a CREATE FUNCTION statement replace the function.
func orReplace(create string) string {
	return strings.Replace(create, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
}
