package jobsbun

import (
	"github.com/jobsmith/jobs/internal/migrate"
)

// PostgreSQL notifications: triggers on the jobs table send NOTIFY hints in
// the transaction of the write that causes them, so a hint is delivered
// exactly when (and only if) the write commits, including jobs created with
// CreateTx inside a caller's transaction. Each trigger is statement-level:
// one batch (a multi-row insert, a claim, a group-committed finish) costs
// at most one notification of each kind, never one per job.
//
// The channel is "jobs:" followed by the schema of the jobs table (its MD5
// when the name would pass PostgreSQL's 63-byte limit), so that schemas in
// one database do not hear each other; jobspg.Channel computes the same
// name. Payloads:
//
//	n            jobs were created or went back to pending
//	c ID ID …    a cancel was requested for these running jobs
//	s ID ID …    these jobs changed status (other than being claimed), progress
//	             or output (a new item)
//	c * / s *    too many jobs to list (over 7 900 bytes): re-check all
//
// Claims and heartbeats send nothing, so the hot path pays only for the
// trigger's scan of the statement's rows.

const pgNotifyChannelSQL = `'jobs:' || CASE WHEN octet_length(TG_TABLE_SCHEMA) <= 58 THEN TG_TABLE_SCHEMA::text ELSE md5(TG_TABLE_SCHEMA) END`

var pgNotifyStep = migrate.Step{
	Version: 2,
	Name:    "notify triggers",
	Stmts: []string{
		`CREATE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(` + pgNotifyChannelSQL + `, 'n');
	RETURN NULL;
END $$`,
		`CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
	FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_insert()`,
		pgNotifyUpdateFunc("CREATE", pgChanged),
		`CREATE TRIGGER jobs_notify_update AFTER UPDATE ON jobs
	REFERENCING OLD TABLE AS jobs_old NEW TABLE AS jobs_new
	FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_update()`,
	},
}

// pgChanged is the condition, on a row's new (n) and old (o) version, of
// an "s" hint as step 2 created it; pgChangedWithOutput adds a new output
// item (step 3, schema_output.go).
const (
	pgChanged = `(n.status <> o.status AND n.status <> 'running')
			OR n.progress_fraction <> o.progress_fraction OR n.progress_message <> o.progress_message`
	pgChangedWithOutput = pgChanged + ` OR n.output_seq <> o.output_seq`
)

// pgNotifyUpdateFunc is the statement that creates (create is "CREATE" or
// "CREATE OR REPLACE") the function of the update trigger, which sends an
// "s" hint for the rows that meet changed.
func pgNotifyUpdateFunc(create, changed string) string {
	return create + ` FUNCTION jobs_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	ch text := ` + pgNotifyChannelSQL + `;
	ready boolean;
	cancels text;
	changed text;
BEGIN
	SELECT bool_or(n.status = 'pending' AND o.status <> 'pending'),
		string_agg(n.id::text, ' ') FILTER (WHERE n.cancel_requested AND NOT o.cancel_requested AND n.status = 'running'),
		string_agg(n.id::text, ' ') FILTER (WHERE ` + changed + `)
	INTO ready, cancels, changed
	FROM jobs_new n JOIN jobs_old o ON o.id = n.id;
	IF ready THEN
		PERFORM pg_notify(ch, 'n');
	END IF;
	IF cancels IS NOT NULL THEN
		PERFORM pg_notify(ch, 'c ' || CASE WHEN octet_length(cancels) > 7900 THEN '*' ELSE cancels END);
	END IF;
	IF changed IS NOT NULL THEN
		PERFORM pg_notify(ch, 's ' || CASE WHEN octet_length(changed) > 7900 THEN '*' ELSE changed END);
	END IF;
	RETURN NULL;
END $$`
}
