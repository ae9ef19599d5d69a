package jobs_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/jobsmith/jobs/jobstest"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// bunOptions are the conformance options of a BunRepository: CreateTx in a
// transaction of its own database, and rows damaged with raw SQL.
func bunOptions(corrupt string) []jobstest.Option {
	return []jobstest.Option{
		jobstest.WithTx(func(t *testing.T, repo jobs.JobRepository) bun.Tx {
			tx, err := repo.(*jobs.BunRepository).DB().BeginTx(t.Context(), nil)
			require.NoError(t, err)
			return tx
		}),
		jobstest.WithCorruptRow(func(t *testing.T, repo jobs.JobRepository, id uuid.UUID) {
			_, err := repo.(*jobs.BunRepository).DB().ExecContext(t.Context(), corrupt, id.String())
			require.NoError(t, err)
		}),
	}
}

// TestSQLiteConformance runs the storage contract on SQLite files.
func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.JobRepository { return openSQLite(t) },
		bunOptions("UPDATE jobs SET payload = '{not json', errors = 'garbage[' WHERE id = ?")...)
}

// TestSQLiteConformanceSmallPayloadLimit checks that the payload limit
// reaches the SQLite repository through jobsqlite.
func TestSQLiteConformanceSmallPayloadLimit(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.JobRepository {
		return openSQLite(t, jobsqlite.WithRepositoryOptions(jobs.WithMaxPayloadBytes(64)))
	}, jobstest.WithMaxPayloadBytes(64))
}

// TestPostgresConformance runs the storage contract on PostgreSQL schemas
// (jsonb cannot hold invalid JSON, so the damage there is a history that
// is not an array).
func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.JobRepository { return openPostgres(t) },
		bunOptions(`UPDATE jobs SET errors = '{"not": "an array"}' WHERE id = ?`)...)
}

var _ = jobspg.ApplicationName
