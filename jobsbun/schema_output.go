package jobsbun

import (
	"github.com/jobsmith/jobs/internal/migrate"
)

// The storage of checkpoints and job output (see [jobs.ProgressUpdate]):
// two columns of jobs and a table of their own for the items.
//
//   - jobs.checkpoint: the latest checkpoint, NULL for none; stored like
//     the payload (TEXT on SQLite, JSONB on PostgreSQL), so that its bytes
//     come back the way a payload's do;
//   - jobs.output_seq: the number of the job's last output item, 0 for none;
//   - job_output(job_id, seq, data): one row per item, keyed (and, on
//     SQLite, clustered: WITHOUT ROWID) by job and number, so that
//     ReadOutput is one range read of the primary key. It has no foreign
//     key: Prune deletes a job's items in the write that deletes the job
//     (maintenance.go), and an insert pays no lookup of its job.
//
// A job's items are exactly 1…output_seq: they are only written in the
// fenced write that raises output_seq (fenced.go, output.go).

const outputSeqCheck = `CONSTRAINT jobs_output_seq_check CHECK (output_seq >= 0)`

var sqliteOutputStep = migrate.Step{
	Version: 2,
	Name:    "checkpoints and output",
	Stmts: []string{
		`ALTER TABLE jobs ADD COLUMN checkpoint TEXT`,
		`ALTER TABLE jobs ADD COLUMN output_seq INTEGER NOT NULL DEFAULT 0 ` + outputSeqCheck,
		`CREATE TABLE job_output (
	job_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	data TEXT NOT NULL,
	PRIMARY KEY (job_id, seq)
) WITHOUT ROWID`,
	},
}

var pgOutputStep = migrate.Step{
	Version: 3,
	Name:    "checkpoints and output",
	Stmts: []string{
		`ALTER TABLE jobs ADD COLUMN checkpoint JSONB, ADD COLUMN output_seq BIGINT NOT NULL DEFAULT 0 ` + outputSeqCheck,
		`CREATE TABLE job_output (
	job_id UUID NOT NULL,
	seq BIGINT NOT NULL,
	data JSONB NOT NULL,
	PRIMARY KEY (job_id, seq)
)`,
		// A new output item is a change that followers wait for, like a
		// progress change (schema_notify.go).
		pgNotifyUpdateFunc("CREATE OR REPLACE", pgChangedWithOutput),
	},
}
