package jobsbun

import (
	"encoding/json"

	"github.com/jobsmith/jobs/internal/migrate"
)

// The storage of job metadata (see [jobs.Job].Metadata): one nullable
// column of jobs holding the map as a JSON object (TEXT on SQLite, JSONB
// on PostgreSQL), NULL when the job has none. It is written once, by the
// INSERT that creates the job, and never indexed: no query filters on it.
//
// Jobs without metadata keep the fast insert paths of SQLite (stmt.go),
// which leave the column to its default; a batch holding a job with
// metadata takes the general multi-row INSERT.

var sqliteMetadataStep = migrate.Step{
	Version: 5,
	Name:    "job metadata",
	Stmts:   []string{`ALTER TABLE jobs ADD COLUMN metadata TEXT`},
}

var pgMetadataStep = migrate.Step{
	Version: 7,
	Name:    "job metadata",
	Stmts:   []string{`ALTER TABLE jobs ADD COLUMN metadata JSONB`},
}

// metadataArg is the value of the metadata column of a job: nil (NULL) for
// none, else the map as a JSON object.
func metadataArg(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil { // a map of strings always encodes
		return nil
	}
	return string(b)
}

// scanMetadata decodes a stored metadata column leniently: NULL, or a value
// that is not a JSON object of strings (a row damaged by other code), is no
// metadata.
func scanMetadata(b []byte) map[string]string {
	if len(b) == 0 {
		return nil
	}
	var m map[string]string
	if json.Unmarshal(b, &m) != nil || len(m) == 0 {
		return nil
	}
	return m
}

// metadataSize is about the bytes a job's metadata adds to an INSERT.
func metadataSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 6
	}
	return n
}
