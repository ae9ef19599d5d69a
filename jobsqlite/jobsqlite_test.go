package jobsqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDSNPerDriver(t *testing.T) {
	t.Parallel()
	modernc := DSN("sqlite", "/tmp/a b/jobs.db", Normal, 5*time.Second)
	require.True(t, strings.HasPrefix(modernc, "file:/tmp/a%20b/jobs.db?"), modernc)
	for _, p := range []string{"busy_timeout%285000%29", "journal_mode%28WAL%29", "foreign_keys%281%29", "synchronous%28NORMAL%29", "_txlock=immediate"} {
		require.Contains(t, modernc, p)
	}
	require.NotContains(t, modernc, "_busy_timeout")
	mattn := DSN("sqlite3", "data/jobs.db", Full, time.Second)
	require.True(t, strings.HasPrefix(mattn, "file:data/jobs.db?"), mattn)
	for _, p := range []string{"_busy_timeout=1000", "_journal_mode=WAL", "_foreign_keys=1", "_synchronous=FULL", "_txlock=immediate"} {
		require.Contains(t, mattn, p)
	}
}

func TestOpenAppliesAndChecksPragmas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "data", "nested", "jobs.db")
	db, err := OpenDB(ctx, path, WithSynchronous(Full), WithBusyTimeout(1234*time.Millisecond))
	require.NoError(t, err)
	defer db.Close()
	_, err = os.Stat(filepath.Dir(path))
	require.NoError(t, err, "the parent directory was created")
	var journal string
	var sync, busy int
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal))
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
	require.Equal(t, "wal", journal)
	require.Equal(t, 2, sync)
	require.Equal(t, 1234, busy)

	// A database whose settings differ from the wanted ones is refused.
	c, err := newConfig(nil)
	require.NoError(t, err)
	err = checkPragmas(ctx, db, c)
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	require.Contains(t, err.Error(), "synchronous=2")
}

func TestOpenRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, path := range []string{"", ":memory:", "file::memory:", "file:x.db?mode=memory", "x.db?_pragma=foo"} {
		_, err := Open(ctx, path)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, path)
	}
	dir := t.TempDir()
	for _, o := range []Option{WithSynchronous("OFF"), WithBusyTimeout(0), WithMaxOpenConns(0)} {
		_, err := Open(ctx, filepath.Join(dir, "x.db"), o)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	}
	_, err := Open(ctx, filepath.Join(dir, "y.db"), WithRepositoryOptions(jobsbun.WithMaxPayloadBytes(0)))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	// OpenDB opens no repository: repository options would do nothing.
	_, err = OpenDB(ctx, filepath.Join(dir, "z.db"), WithRepositoryOptions(jobsbun.WithMaxPayloadBytes(10)))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	_, err = os.Stat(filepath.Join(dir, "z.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing was opened")
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	_, err = Open(ctx, filepath.Join(notDir, "jobs.db"))
	require.ErrorIs(t, err, jobs.ErrUnavailable)
}

func TestOpenRoundTripAndOwnership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "jobs.db")
	repo, err := Open(ctx, path, WithRepositoryOptions(jobsbun.WithMaxPayloadBytes(10)))
	require.NoError(t, err)
	require.ErrorIs(t, repo.Create(ctx, &jobs.Job{Kind: "k", Payload: []byte(`"0123456789"`)}), jobs.ErrTooLarge)
	j := &jobs.Job{Kind: "k", Payload: []byte(`[1]`)}
	require.NoError(t, repo.Create(ctx, j))
	require.NoError(t, repo.Close())
	require.Error(t, repo.DB().PingContext(ctx), "Close closed the database")

	repo, err = Open(ctx, path)
	require.NoError(t, err)
	defer repo.Close()
	got, err := repo.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "[1]", string(got.Payload))
	require.True(t, sqliteshim.HasDriver())
}

// TestOpenCheckpointsInTheBackground: a repository from Open leaves the
// WAL's checkpoints out of its commits (wal_autocheckpoint 0, so that no
// write waits for one) and checkpoints in the background: after 3 000
// single-job commits in a row the WAL file has not grown past a few
// megabytes (without checkpoints each commit appends its pages: about
// 60 MB; with only PASSIVE checkpoints beside the writes, as much).
func TestOpenCheckpointsInTheBackground(t *testing.T) {
	t.Parallel()
	if sqliteshim.DriverName() != "sqlite" {
		t.Skip("the background checkpoint is set up for modernc.org/sqlite")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "jobs.db")
	repo, err := Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { repo.Close() })
	var auto int
	require.NoError(t, repo.DB().QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto))
	require.Zero(t, auto, "commits do not checkpoint")
	for range 3000 {
		require.NoError(t, repo.Create(ctx, &jobs.Job{Kind: "k", Payload: []byte(`{}`)}))
	}
	fi, err := os.Stat(path + "-wal")
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(20<<20), "the WAL was checkpointed and started over")
}
