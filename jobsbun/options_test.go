package jobsbun_test

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

// Each option's valid range: out of it, New refuses with ErrInvalidArgument
// and opens nothing.
func TestOptionRanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  jobsbun.Option
		ok   bool
	}{
		{"payload zero", jobsbun.WithMaxPayloadBytes(0), false},
		{"payload negative", jobsbun.WithMaxPayloadBytes(-1), false},
		{"payload one", jobsbun.WithMaxPayloadBytes(1), true},
		{"payload default", jobsbun.WithMaxPayloadBytes(rules.MaxPayloadBytes), true},
		{"payload large", jobsbun.WithMaxPayloadBytes(64 << 20), true},
		{"busy retry zero", jobsbun.WithBusyRetry(0), false},
		{"busy retry negative", jobsbun.WithBusyRetry(-time.Second), false},
		{"busy retry", jobsbun.WithBusyRetry(time.Second), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, err := jobsqlite.OpenDB(t.Context(), testdb.SQLitePath(t))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, db.Close()) })
			repo, err := jobsbun.New(t.Context(), db, tc.opt)
			if !tc.ok {
				require.ErrorIs(t, err, jobs.ErrInvalidArgument)
				require.Nil(t, repo)
				return
			}
			require.NoError(t, err)
			require.NoError(t, repo.Close())
		})
	}
}

func TestWithMaxPayloadBytesApplies(t *testing.T) {
	t.Parallel()
	db, err := jobsqlite.OpenDB(t.Context(), testdb.SQLitePath(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	repo, err := jobsbun.New(t.Context(), db, jobsbun.WithMaxPayloadBytes(4))
	require.NoError(t, err)
	require.NoError(t, repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: []byte(`1234`)}))
	require.ErrorIs(t, repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: []byte(`12345`)}), jobs.ErrTooLarge)
}
