package jobsbun

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"

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
	rows, err := r.query(ctx, r.db, "SELECT ? < ?", rules.Now(), rules.Now().Add(time.Second))
	require.NoError(t, err)
	require.True(t, rows.Next())
	var less bool
	require.NoError(t, rows.Scan(&less))
	require.True(t, less)
	require.NoError(t, rows.Close())

	require.NoError(t, r.Close())
	require.Empty(t, r.stmts.stmts, "Close closes the prepared statements")
}

func TestInsertBoundChunksAndRollsBackWhole(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	const n = 3*insertBoundRows + 7 // full chunks, then 4 + 2 + 1
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k", Priority: i, Payload: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)}
	}
	js[5].RunAt = time.Now().Add(time.Hour)
	require.NoError(t, r.Create(ctx, js...))
	for _, i := range []int{0, 5, n - 1} {
		got, err := r.Get(ctx, js[i].ID)
		require.NoError(t, err)
		require.Equal(t, i, got.Priority)
		require.JSONEq(t, string(js[i].Payload), string(got.Payload))
		require.True(t, js[i].RunAt.Equal(got.RunAt))
		require.True(t, js[i].CreatedAt.Equal(got.CreatedAt))
	}
	st, err := r.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, n, st.Total)

	// A row that fails in the last statement undoes the whole batch, and
	// the repository writes normally afterwards.
	more := make([]*jobs.Job, insertBoundRows+1)
	at := rules.Now() // one time: the statements that bind it once
	for i := range more {
		more[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
		require.NoError(t, more[i].Prepare(at, r.maxPayload))
	}
	more[len(more)-1].ID = js[0].ID
	err = r.write(ctx, "create", true, func(ctx context.Context, db bun.IDB) error { return r.insertBound(ctx, db, more, nil) })
	require.ErrorContains(t, err, "UNIQUE constraint failed")
	st, err = r.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, n, st.Total, "nothing of the failed batch is stored")
	require.NoError(t, r.Create(ctx, &jobs.Job{Kind: "k"}, &jobs.Job{Kind: "k"}))
}

func TestStmtCacheIsBounded(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	for i := range maxCachedStmts {
		st, err := r.stmts.get(ctx, "SELECT "+strconv.Itoa(i))
		require.NoError(t, err)
		require.NotNil(t, st)
	}
	st, err := r.stmts.get(ctx, "SELECT -1")
	require.NoError(t, err)
	require.Nil(t, st, "a full cache prepares nothing more")
	rows, err := r.query(ctx, r.db, "SELECT ? + 1", 41)
	require.NoError(t, err, "an uncached statement runs through bun")
	require.True(t, rows.Next())
	var v int
	require.NoError(t, rows.Scan(&v))
	require.Equal(t, 42, v)
	require.NoError(t, rows.Close())
}

// TestStmtCacheWithOneConnection: with a pool of one connection, the first
// use of a statement inside the repository's own transaction must not wait
// for a second connection to prepare it (it used to hang for ever).
func TestStmtCacheWithOneConnection(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	r.db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	js := make([]*jobs.Job, 2*insertBoundRows+3)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k"}
	}
	require.NoError(t, r.Create(ctx, js...), "a batch create in one transaction")
	claimed, err := r.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: len(js), LeaseDuration: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, len(js))
	cs := make([]jobs.Completion, len(claimed))
	for i, j := range claimed {
		cs[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}
	}
	require.NoError(t, r.Finish(ctx, cs...))
	st, err := r.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, len(js), st.ByStatus[jobs.StatusSucceeded])
}
