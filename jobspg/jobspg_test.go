package jobspg_test

import (
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenSetsApplicationNameAndMigrates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testdb.PostgresDSN(t)
	repo, err := jobspg.Open(ctx, dsn, jobspg.WithMaxOpenConns(2))
	require.NoError(t, err)
	defer repo.Close()
	var app string
	require.NoError(t, repo.DB().QueryRowContext(ctx, "SELECT current_setting('application_name')").Scan(&app))
	require.Equal(t, jobspg.ApplicationName, app)
	j := &jobs.Job{Kind: "k", Payload: []byte(`{"b": 1, "a": [true]}`)}
	require.NoError(t, repo.Create(ctx, j))
	got, err := repo.Get(ctx, j.ID)
	require.NoError(t, err)
	require.JSONEq(t, string(j.Payload), string(got.Payload))

	// A second Open of the same schema finds it migrated.
	again, err := jobspg.Open(ctx, dsn, jobspg.WithMaxOpenConns(1))
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, err := jobspg.Open(ctx, "postgres://%zz")
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	_, err = jobspg.Open(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	require.ErrorIs(t, err, jobs.ErrUnavailable)
	_, err = jobspg.Open(ctx, "postgres://postgres@127.0.0.1:1/x", jobspg.WithMaxOpenConns(0))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	// OpenDB opens no repository: repository options would do nothing.
	_, err = jobspg.OpenDB(ctx, "postgres://postgres@127.0.0.1:1/x", jobspg.WithRepositoryOptions(jobsbun.WithMaxPayloadBytes(10)))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

// TestOpenMissingSchemaIsMisconfigured checks that a search_path naming no
// existing schema is reported as a setup mistake, not an internal error.
func TestOpenMissingSchemaIsRefused(t *testing.T) {
	t.Parallel()
	dsn := testdb.WithSearchPath(testdb.PostgresDSN(t), "jobs_no_such_schema")
	_, err := jobspg.Open(t.Context(), dsn, jobspg.WithMaxOpenConns(1))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	require.Equal(t, jobs.ErrInvalidArgument, jobs.CodeOf(err))
}
