package jobsbun

import "github.com/jobsmith/jobs/internal/migrate"

// The storage of schedules (see [jobs.JobRepository.Tick]): one row per
// schedule name in jobs_schedules(name, spec, kind, last_tick, next_tick,
// updated_at). Ticks are microseconds since the Unix epoch (BIGINT, NULL
// for none), so that both backends order them as numbers. A tick's job is
// inserted in the transaction whose UPDATE moves last_tick forward, and
// that UPDATE's condition (last_tick below the new tick) is what makes a
// tick enqueue exactly once: on SQLite the transaction holds the write
// lock; on PostgreSQL the UPDATE waits for a concurrent one on the same
// row and re-checks its condition against the committed row.

var sqliteSchedulesStep = migrate.Step{
	Version: 4,
	Name:    "schedules",
	Stmts: []string{`CREATE TABLE jobs_schedules (
	name TEXT NOT NULL PRIMARY KEY,
	spec TEXT NOT NULL,
	kind TEXT NOT NULL,
	last_tick INTEGER,
	next_tick INTEGER,
	updated_at TIMESTAMP NOT NULL
) WITHOUT ROWID`},
}

var pgSchedulesStep = migrate.Step{
	Version: 6,
	Name:    "schedules",
	Stmts: []string{`CREATE TABLE jobs_schedules (
	name TEXT NOT NULL PRIMARY KEY,
	spec TEXT NOT NULL,
	kind TEXT NOT NULL,
	last_tick BIGINT,
	next_tick BIGINT,
	updated_at TIMESTAMPTZ NOT NULL
)`},
}
