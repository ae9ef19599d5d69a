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

// TestFairHeadStepMigratesAnExistingDatabase builds a database of the
// schema before the fair head step, with pending jobs with and without a
// key, and opens a repository on it: jobs_fair_head_idx no longer holds
// jobs without a key, and V still counts them: a new key starts at the
// head of the jobs without a key when theirs is the smaller rank.
func TestFairHeadStepMigratesAnExistingDatabase(t *testing.T) {
	t.Parallel()
	for name := range rawDBs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, _ := migratedBefore(t, name, "fair head of keyed jobs")
			now := time.Now().UTC().Add(-time.Minute)
			for key, rank := range map[string]int{"": 5, "a": 7} {
				_, err := db.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at, concurrency_key, fair_rank) "+
					"VALUES (?, 'k', 'default', '{}', 3, ?, ?, ?, ?, ?)", uuid.Must(uuid.NewV7()).String(), now, now, now, key, rank)
				require.NoError(t, err)
			}

			repo, err := New(ctx, db)
			require.NoError(t, err)
			t.Cleanup(func() { repo.Close() })
			def := "SELECT sql FROM sqlite_master WHERE name = 'jobs_fair_head_idx'"
			if repo.d.pg {
				def = "SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_fair_head_idx' AND schemaname = current_schema()"
			}
			require.NoError(t, db.QueryRowContext(ctx, def).Scan(&def))
			require.Regexp(t, `concurrency_key <> ''`, def)
			j := &jobs.Job{Kind: "k", Payload: []byte(`{}`), ConcurrencyKey: "b"}
			require.NoError(t, repo.Create(ctx, j))
			var rank int64
			require.NoError(t, db.QueryRowContext(ctx, "SELECT fair_rank FROM jobs WHERE id = ?", j.ID.String()).Scan(&rank))
			require.Equal(t, int64(5), rank, "V is the head of the jobs without a key")
		})
	}
}
