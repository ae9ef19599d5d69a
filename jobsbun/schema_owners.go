package jobsbun

import "github.com/jobsmith/jobs/internal/migrate"

// pgOwnersStep creates the table of runners that hold an owner lock on
// PostgreSQL (owners_pg.go): the lock's key, and an epoch that the owner
// increments each time it takes its lock, so that a rescuer can tell an
// owner that came back from one that stayed away. SQLite keeps owner
// locks in files beside the database (owners.go).
var pgOwnersStep = migrate.Step{
	Version: 4,
	Name:    "owner locks",
	Stmts: []string{`CREATE TABLE jobs_owners (
	owner TEXT NOT NULL PRIMARY KEY,
	lock_key INTEGER NOT NULL,
	epoch BIGINT NOT NULL,
	held_at TIMESTAMPTZ NOT NULL
)`},
}
