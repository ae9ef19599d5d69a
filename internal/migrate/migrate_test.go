package migrate_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jobsmith/jobs/internal/migrate"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openDB(t *testing.T) *bun.DB {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "m.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	require.NoError(t, err)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	t.Cleanup(func() { db.Close() })
	return db
}

func runTx(db *bun.DB) migrate.TxFunc {
	return func(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
		return db.RunInTx(ctx, nil, fn)
	}
}

const lock = "UPDATE " + migrate.Table + " SET version = version WHERE version < 0"

var steps = []migrate.Step{
	{Version: 1, Name: "t1", Stmts: []string{"CREATE TABLE t1 (id INTEGER)"}},
	{Version: 2, Name: "t2", Stmts: []string{"CREATE TABLE t2 (id INTEGER)", "INSERT INTO t2 VALUES (1)"}},
}

func TestRunAppliesEachStepOnce(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	require.NoError(t, migrate.Run(ctx, runTx(db), lock, steps[:1]))
	v, err := migrate.Current(ctx, db)
	require.NoError(t, err)
	require.Equal(t, 1, v)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { require.NoError(t, migrate.Run(ctx, runTx(db), lock, steps)) })
	}
	wg.Wait()
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t2").Scan(&n))
	require.Equal(t, 1, n, "step 2 ran once")
	v, err = migrate.Current(ctx, db)
	require.NoError(t, err)
	require.Equal(t, 2, v)

	require.ErrorIs(t, migrate.Run(ctx, runTx(db), lock, steps[:1]), migrate.ErrTooNew)
}

func TestRunRollsBackAFailedStep(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	bad := []migrate.Step{steps[0], {Version: 2, Name: "bad", Stmts: []string{"CREATE TABLE t2 (id INTEGER)", "NOT SQL"}}}
	require.Error(t, migrate.Run(ctx, runTx(db), lock, bad))
	v, err := migrate.Current(ctx, db)
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.NoError(t, migrate.Run(ctx, runTx(db), lock, steps), "t2 was rolled back, so step 2 applies")

	gap := []migrate.Step{{Version: 2, Name: "gap"}}
	require.Error(t, migrate.Run(ctx, runTx(db), lock, gap))
}
