package jobsbun

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/migrate"
	"github.com/jobsmith/jobs/internal/testdb"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// rawDBs open an empty database of each dialect without a repository,
// for tests that build the schema of an older version by hand.
var rawDBs = map[string]func(t *testing.T) *bun.DB{
	"sqlite": func(t *testing.T) *bun.DB {
		dsn := "file:" + filepath.Join(t.TempDir(), "jobs.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
		require.NoError(t, err)
		return bun.NewDB(sqldb, sqlitedialect.New())
	},
	"postgres": func(t *testing.T) *bun.DB {
		sqldb, err := sql.Open("pgx", testdb.PostgresDSN(t))
		require.NoError(t, err)
		return bun.NewDB(sqldb, pgdialect.New())
	},
}

// migratedBefore opens a database of the named dialect (rawDBs), closed
// when the test ends, with the schema of the migration steps before the
// step named step, and returns it with the last version of the dialect.
func migratedBefore(t *testing.T, dialect, step string) (*bun.DB, int) {
	t.Helper()
	db := rawDBs[dialect](t)
	t.Cleanup(func() { db.Close() })
	d, err := newSQLDialect(db)
	require.NoError(t, err)
	steps := d.steps()
	i := slices.IndexFunc(steps, func(s migrate.Step) bool { return s.Name == step })
	require.Positive(t, i)
	runTx := func(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
		return db.RunInTx(ctx, nil, fn)
	}
	require.NoError(t, migrate.Run(t.Context(), runTx, d.lockMigrations(), steps[:i]))
	return db, steps[len(steps)-1].Version
}

// TestOutputStepMigratesAnExistingDatabase builds a database of the schema
// before checkpoints and output, with a job in it, and opens a repository
// on it: the job reads back without checkpoint or output and can save both.
func TestOutputStepMigratesAnExistingDatabase(t *testing.T) {
	t.Parallel()
	for name := range rawDBs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			// Later steps (any number) are applied by New.
			db, last := migratedBefore(t, name, "checkpoints and output")
			id := uuid.Must(uuid.NewV7())
			now := time.Now().UTC()
			_, err := db.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at) "+
				"VALUES (?, 'k', 'default', '{\"old\": true}', 3, ?, ?, ?)", id.String(), now, now, now)
			require.NoError(t, err)

			r, err := New(ctx, db)
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			v, err := migrate.Current(ctx, db)
			require.NoError(t, err)
			require.Equal(t, last, v)

			j, err := r.Get(ctx, id)
			require.NoError(t, err)
			require.JSONEq(t, `{"old": true}`, string(j.Payload))
			require.Nil(t, j.Checkpoint)
			require.Zero(t, j.OutputSeq)
			_, err = db.ExecContext(ctx, "UPDATE jobs SET output_seq = -1 WHERE id = ?", id.String())
			require.Error(t, err, "output_seq is never negative")

			claimed, err := r.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 1, LeaseDuration: time.Minute})
			require.NoError(t, err)
			require.Len(t, claimed, 1)
			require.NoError(t, r.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: claimed[0].Lease(),
				Checkpoint: json.RawMessage(`{"at": 1}`), Output: []json.RawMessage{json.RawMessage(`"item"`)}}))
			out, err := r.ReadOutput(ctx, id, 0, 10)
			require.NoError(t, err)
			require.Len(t, out, 1)
			require.JSONEq(t, `"item"`, string(out[0].Data))

			// Opening again migrates nothing.
			again, err := New(ctx, db)
			require.NoError(t, err)
			require.NoError(t, again.Close())
		})
	}
}
