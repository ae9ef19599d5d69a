package jobsbun

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// claimAs creates n jobs and claims them for owner with a long lease.
func claimAs(t *testing.T, r *Repository, owner string, n int) []*jobs.Job {
	t.Helper()
	for range n {
		require.NoError(t, r.Create(t.Context(), &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	}
	js, err := r.Claim(t.Context(), jobs.ClaimQuery{Owner: owner, Limit: n, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, js, n)
	return js
}

func TestHoldOwnerLockFile(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	dir, err := r.ownersDir(ctx)
	require.NoError(t, err)
	path := ownerLockPath(dir, "w1")

	release, err := r.HoldOwner(ctx, "w1")
	require.NoError(t, err)
	require.FileExists(t, path)
	_, err = lockOwnerFile(path, false)
	require.ErrorIs(t, err, errLockHeld, "held: nobody else can take it")
	_, err = r.HoldOwner(ctx, "w1")
	require.ErrorIs(t, err, jobs.ErrConflict, "an owner name is held once")

	release()
	release() // idempotent
	require.NoFileExists(t, path, "a clean release removes the file")
	release, err = r.HoldOwner(ctx, "w1")
	require.NoError(t, err, "free again")
	release()

	// A lock held elsewhere (another process) refuses the owner too.
	f, err := lockOwnerFile(path, true)
	require.NoError(t, err)
	_, err = r.HoldOwner(ctx, "w1")
	require.ErrorIs(t, err, jobs.ErrConflict)
	require.NoError(t, f.Close())
	_, err = r.HoldOwner(ctx, "")
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

func TestRescueDeadOwner(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	dir, err := r.ownersDir(ctx)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))

	// "dead" and "paused" hold their locks as other processes would (an
	// open file of their own); "old" has no lock file (an older version or
	// another host); "me" is held by this repository.
	dead, err := lockOwnerFile(ownerLockPath(dir, "dead"), true)
	require.NoError(t, err)
	paused, err := lockOwnerFile(ownerLockPath(dir, "paused"), true)
	require.NoError(t, err)
	defer paused.Close()
	release, err := r.HoldOwner(ctx, "me")
	require.NoError(t, err)
	defer release()
	deadJobs := claimAs(t, r, "dead", 3)
	claimAs(t, r, "paused", 2)
	claimAs(t, r, "old", 2)
	claimAs(t, r, "me", 1)

	got, err := r.RescueDead(ctx, 100)
	require.NoError(t, err)
	require.Empty(t, got, "every lock is held: nobody is judged dead")

	require.NoError(t, dead.Close()) // the kernel does this when a process dies
	got, err = r.RescueDead(ctx, 2)
	require.NoError(t, err)
	require.Len(t, got, 2, "at most limit")
	require.FileExists(t, ownerLockPath(dir, "dead"), "kept while jobs of the owner remain running")
	more, err := r.RescueDead(ctx, 100)
	require.NoError(t, err)
	require.Len(t, more, 1)
	require.NoFileExists(t, ownerLockPath(dir, "dead"), "removed once all its jobs are rescued")
	for _, j := range append(got, more...) {
		require.Equal(t, jobs.StatusPending, j.Status)
		require.Equal(t, 1, j.Attempt, "the attempt counts")
		require.Empty(t, j.LeaseOwner)
		require.Equal(t, rules.OwnerDied, j.Error)
		require.Len(t, j.Errors, 1)
		require.Equal(t, rules.OwnerDied, j.Errors[0].Error)
	}
	// The dead owner's late writes are refused by fencing.
	err = r.Finish(ctx, jobs.Completion{Lease: deadJobs[0].Lease(), Status: jobs.StatusSucceeded})
	require.ErrorIs(t, err, jobs.ErrLeaseLost)

	got, err = r.RescueDead(ctx, 100)
	require.NoError(t, err)
	require.Empty(t, got, "paused, old and me keep their jobs")
	st, err := r.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, st.ByStatus[jobs.StatusRunning])

	_, err = r.RescueDead(ctx, 0)
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

// TestRescueDeadRace: two repositories on one file (two processes) find
// the same dead owner at once; each job is rescued once.
func TestRescueDeadRace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jobs.db")
	r := openTestSQLitePath(t, path)
	r2 := openTestSQLitePath(t, path) // another process's repository
	ctx := t.Context()
	dir, err := r.ownersDir(ctx)
	require.NoError(t, err)

	require.NoError(t, os.MkdirAll(dir, 0o755))
	for round := range 20 {
		owner := "dead" + string(rune('a'+round))
		f, err := lockOwnerFile(ownerLockPath(dir, owner), true)
		require.NoError(t, err)
		claimAs(t, r, owner, 5)
		require.NoError(t, f.Close())
		res := make(chan int, 2)
		for _, repo := range []*Repository{r, r2} {
			go func() {
				js, err := repo.RescueDead(context.WithoutCancel(ctx), 100)
				if err != nil {
					res <- -1
					return
				}
				res <- len(js)
			}()
		}
		a, b := <-res, <-res
		require.Equal(t, 5, a+b, "round %d: rescued %d and %d", round, a, b)
		require.NoFileExists(t, ownerLockPath(dir, owner))
	}
}

func TestOwnerLocksUnsupported(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		sqldb, err := sql.Open(sqliteshim.ShimName, "file::memory:?_txlock=immediate")
		require.NoError(t, err)
		sqldb.SetMaxOpenConns(1)
		db := bun.NewDB(sqldb, sqlitedialect.New())
		defer db.Close()
		r, err := New(t.Context(), db)
		require.NoError(t, err)
		_, err = r.HoldOwner(t.Context(), "w1")
		require.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
		_, err = r.RescueDead(t.Context(), 10)
		require.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
	})
}

// BenchmarkRescueDeadIdle is the cost of one dead-owner check when nobody
// is dead (every tick of every runner): running jobs of 4 live owners
// among many finished ones.
func BenchmarkRescueDeadIdle(b *testing.B) {
	r := openBenchSQLite(b)
	ctx := b.Context()
	dir, err := r.ownersDir(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	batch := make([]*jobs.Job, 10000)
	for i := range batch {
		batch[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
	}
	if err := r.Create(ctx, batch...); err != nil {
		b.Fatal(err)
	}
	for _, owner := range []string{"a", "b", "c", "d"} {
		f, err := lockOwnerFile(ownerLockPath(dir, owner), true)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := r.Claim(ctx, jobs.ClaimQuery{Owner: owner, Limit: 8, LeaseDuration: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		js, err := r.RescueDead(ctx, 500)
		if err != nil || len(js) != 0 {
			b.Fatal(err, len(js))
		}
	}
}

// openBenchSQLite is openTestSQLite for a benchmark.
func openBenchSQLite(b *testing.B) *Repository {
	b.Helper()
	dsn := "file:" + filepath.Join(b.TempDir(), "jobs.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		b.Fatal(err)
	}
	db := bun.NewDB(sqldb, sqlitedialect.New())
	b.Cleanup(func() { db.Close() })
	r, err := New(b.Context(), db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// TestRescueDeadUsesRunningIndex: the check every runner makes every
// 100 ms reads the partial index of running jobs, not the table.
func TestRescueDeadUsesRunningIndex(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	plan := explain(t, r, runningOwnersSQL, nil)
	require.Contains(t, plan, "USING INDEX jobs_rescue_idx")
}

// TestHoldOwnerSweepsIdleDeadOwners: a process killed while it ran no job
// leaves its lock file; the next HoldOwner removes it, and keeps the files
// of live owners and of dead owners whose jobs still wait for RescueDead.
func TestHoldOwnerSweepsIdleDeadOwners(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	dir, err := r.ownersDir(ctx)
	require.NoError(t, err)
	// Simulate the files: an idle dead owner, a dead owner with a running
	// job, and a live owner.
	mk := func(owner string) *os.File {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		f, err := lockOwnerFile(ownerLockPath(dir, owner), true)
		require.NoError(t, err)
		_, err = f.WriteString(owner)
		require.NoError(t, err)
		return f
	}
	idle, busy, live := mk("idle"), mk("busy"), mk("live")
	defer live.Close()
	claimAs(t, r, "busy", 1)
	require.NoError(t, idle.Close())
	require.NoError(t, busy.Close())

	release, err := r.HoldOwner(ctx, "me")
	require.NoError(t, err)
	defer release()
	require.NoFileExists(t, ownerLockPath(dir, "idle"))
	require.FileExists(t, ownerLockPath(dir, "busy"), "left for RescueDead")
	require.FileExists(t, ownerLockPath(dir, "live"))
	got, err := r.RescueDead(ctx, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

// An owner lock whose release func was dropped without a call (a runner
// that left handlers behind at shutdown keeps its lock) stays held through
// garbage collection: the process lives, so its jobs must not be rescued.
func TestHeldOwnerSurvivesGarbageCollection(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jobs.db")
	r := openTestSQLitePath(t, path)
	ctx := t.Context()
	release, err := r.HoldOwner(ctx, "kept")
	require.NoError(t, err)
	claimAs(t, r, "kept", 1)
	release = nil // dropped, as Run does when handlers are left behind
	_ = release
	runtime.GC()
	runtime.GC()
	other := openTestSQLitePath(t, path) // another process's repository
	got, err := other.RescueDead(ctx, 100)
	require.NoError(t, err)
	require.Empty(t, got, "a live owner's lock was freed by the garbage collector")
}
