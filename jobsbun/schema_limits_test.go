package jobsbun

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/migrate"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// TestLimitStepMigratesAnExistingDatabase builds a database of the schema
// before flow control, with a pending job in it, and opens a repository
// on it: the job has no concurrency key, is claimable, and the claim
// index is the rebuilt one.
func TestLimitStepMigratesAnExistingDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := "file:" + filepath.Join(t.TempDir(), "old.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	require.NoError(t, err)
	old := bun.NewDB(sqldb, sqlitedialect.New())
	t.Cleanup(func() { old.Close() })
	d := sqlDialect{}
	all := d.steps()
	at := slices.IndexFunc(all, func(s migrate.Step) bool { return s.Name == "flow control" })
	require.Greater(t, at, 0)
	runTx := func(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
		return old.RunInTx(ctx, nil, fn)
	}
	require.NoError(t, migrate.Run(ctx, runTx, d.lockMigrations(), all[:at]))
	id := uuid.Must(uuid.NewV7())
	now := time.Now().UTC()
	_, err = old.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at) "+
		"VALUES (?, 'k', 'default', '{}', 3, ?, ?, ?)", id.String(), now, now, now)
	require.NoError(t, err)

	repo, err := New(ctx, old)
	require.NoError(t, err)
	t.Cleanup(func() { repo.Close() })
	j, err := repo.Get(ctx, id)
	require.NoError(t, err)
	require.Empty(t, j.ConcurrencyKey)
	got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 5, LeaseDuration: time.Minute,
		KindLimits: map[string]jobs.Limit{"k": {Running: 1}}})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{id}, []uuid.UUID{got[0].ID})
	query, args := repo.claimSQL(jobs.ClaimQuery{Owner: "o", Limit: 5, LeaseDuration: time.Minute}, now)
	require.Contains(t, explain(t, repo, query, args), "jobs_claim_idx")
}
