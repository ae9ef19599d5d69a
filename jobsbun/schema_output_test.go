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

// TestOutputStepMigratesAnExistingDatabase builds a database of the schema
// before checkpoints and output, with a job in it, and opens a repository
// on it: the job reads back without checkpoint or output and can save both.
func TestOutputStepMigratesAnExistingDatabase(t *testing.T) {
	t.Parallel()
	open := map[string]func(t *testing.T) *bun.DB{
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
	for name, openDB := range open {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := openDB(t)
			t.Cleanup(func() { db.Close() })
			d, err := newSQLDialect(db)
			require.NoError(t, err)
			steps := d.steps()
			last := steps[len(steps)-1]
			output := slices.IndexFunc(steps, func(s migrate.Step) bool { return s.Name == "checkpoints and output" })
			require.Positive(t, output)
			runTx := func(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
				return db.RunInTx(ctx, nil, fn)
			}
			require.NoError(t, migrate.Run(ctx, runTx, d.lockMigrations(), steps[:output]))
			id := uuid.Must(uuid.NewV7())
			now := time.Now().UTC()
			_, err = db.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, payload, max_attempts, run_at, created_at, updated_at) "+
				"VALUES (?, 'k', 'default', '{\"old\": true}', 3, ?, ?, ?)", id.String(), now, now, now)
			require.NoError(t, err)

			r, err := New(ctx, db)
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			v, err := migrate.Current(ctx, db)
			require.NoError(t, err)
			require.Equal(t, last.Version, v)

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
