package jobsbun_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/jobsmith/jobs/jobstest"
	"github.com/stretchr/testify/require"
)

// bunOptions are the conformance options of a jobsbun.Repository: CreateTx in a
// transaction of its own database, and rows damaged with raw SQL.
func bunOptions(corrupt string) []jobstest.Option {
	return []jobstest.Option{
		jobstest.WithTx(func(t *testing.T, repo jobs.JobRepository) jobstest.Tx {
			db := repo.(*jobsbun.Repository).DB()
			tx, err := db.BeginTx(t.Context(), nil)
			require.NoError(t, err)
			return jobstest.Tx{Value: tx, Commit: tx.Commit, Rollback: tx.Rollback}
		}),
		jobstest.WithCorruptRow(func(t *testing.T, repo jobs.JobRepository, id uuid.UUID) {
			_, err := repo.(*jobsbun.Repository).DB().ExecContext(t.Context(), corrupt, id.String())
			require.NoError(t, err)
		}),
	}
}

// TestSQLiteConformance runs the storage contract on SQLite files (the
// damaged row has a payload and a history that are not JSON and a creation
// time that is not a time).
func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.JobRepository { return testrepo.SQLite(t) },
		bunOptions("UPDATE jobs SET payload = '{not json', errors = 'garbage[', created_at = 'not a time' WHERE id = ?")...)
}

// TestSQLiteRepositoryOptionsReachTheRepository checks that a payload limit
// given to jobsqlite applies to payloads and results (the full suite runs
// with the default limit; running it again for one option is not worth the
// minute it costs under -race).
func TestSQLiteRepositoryOptionsReachTheRepository(t *testing.T) {
	t.Parallel()
	repo := testrepo.SQLite(t, jobsqlite.WithRepositoryOptions(jobsbun.WithMaxPayloadBytes(64)))
	fits := &jobs.Job{Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("a", 62) + `"`)}
	require.NoError(t, repo.Create(t.Context(), fits))
	tooBig := &jobs.Job{Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("a", 63) + `"`)}
	require.ErrorIs(t, repo.Create(t.Context(), tooBig), jobs.ErrTooLarge)

	claimed, err := repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "o", Limit: 1, LeaseDuration: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	err = repo.Finish(t.Context(), jobs.Completion{Lease: claimed[0].Lease(), Status: jobs.StatusSucceeded,
		Result: json.RawMessage(`"` + strings.Repeat("b", 63) + `"`)})
	require.ErrorIs(t, err, jobs.ErrTooLarge)
	got, err := repo.Get(t.Context(), fits.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusRunning, got.Status, "a refused result changes nothing")
}

// TestPostgresConformance runs the storage contract on PostgreSQL schemas
// (jsonb cannot hold invalid JSON, so the damage there is a history that
// is not an array and a creation time, infinity, that no time.Time holds).
func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.JobRepository { return testrepo.Postgres(t) },
		bunOptions(`UPDATE jobs SET errors = '{"not": "an array"}', created_at = 'infinity' WHERE id = ?`)...)
}

var _ = jobspg.ApplicationName
