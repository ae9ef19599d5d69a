package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/dialect/sqlitedialect"
)

func TestBoundTimeIsBunsText(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 1, 2, 3, 450000000, time.FixedZone("x", -3600))
	want := string(sqlitedialect.New().AppendTime(nil, at))
	require.Equal(t, want, "'"+boundTime(at)+"'", "bound and formatted times must compare alike")
}

func TestStmtCachePreparesOnceAndCloses(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	a, err := r.stmts.get(ctx, "SELECT COUNT(*) FROM jobs WHERE kind = ?")
	require.NoError(t, err)
	b, err := r.stmts.get(ctx, "SELECT COUNT(*) FROM jobs WHERE kind = ?")
	require.NoError(t, err)
	require.Same(t, a, b)
	_, err = r.stmts.get(ctx, "NOT SQL")
	require.Error(t, err)

	// query binds times as text and works inside and outside transactions.
	rows, err := r.query(ctx, r.db, "SELECT ? < ?", now(), now().Add(time.Second))
	require.NoError(t, err)
	require.True(t, rows.Next())
	var less bool
	require.NoError(t, rows.Scan(&less))
	require.True(t, less)
	require.NoError(t, rows.Close())

	require.NoError(t, r.Close())
	require.Empty(t, r.stmts.stmts, "Close closes the prepared statements")
}
