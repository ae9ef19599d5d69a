package jobsbun

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"golang.org/x/sync/errgroup"
)

// openTestPG opens a repository on a new PostgreSQL schema with a pool of
// maxConns connections (0: unlimited).
func openTestPG(t *testing.T, dsn string, maxConns int) *Repository {
	t.Helper()
	sqldb, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	sqldb.SetMaxOpenConns(maxConns)
	db := bun.NewDB(sqldb, pgdialect.New())
	t.Cleanup(func() { db.Close() })
	r, err := New(t.Context(), db)
	require.NoError(t, err)
	return r
}

// pgOwnerHeld reports whether some session holds owner's lock, and the
// epoch recorded for it (0 without a record).
func pgOwnerHeld(t *testing.T, r *Repository, owner string) (held bool, epoch int64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, r.db.QueryRowContext(ctx, "SELECT "+fmt.Sprintf(pgLockHeldSQL, "?::int"), pgOwnerKey(owner)).Scan(&held))
	err := r.db.QueryRowContext(ctx, "SELECT epoch FROM jobs_owners WHERE owner = ?", owner).Scan(&epoch)
	if !errors.Is(err, sql.ErrNoRows) {
		require.NoError(t, err)
	}
	return held, epoch
}

// pgOwnerPID is the backend that holds owner's lock.
func pgOwnerPID(t *testing.T, r *Repository, owner string) int {
	t.Helper()
	var pid int
	require.NoError(t, r.db.QueryRowContext(t.Context(), `SELECT pid FROM pg_locks WHERE locktype = 'advisory'
		AND objsubid = 2 AND classid = 'jobs_owners'::regclass AND objid = ?::int::oid AND granted`, pgOwnerKey(owner)).Scan(&pid))
	return pid
}

// lockElsewhere holds owner's lock from another session of r's pool until
// the test ends, as another process would.
func lockElsewhere(t *testing.T, r *Repository, owner string) {
	t.Helper()
	conn, err := r.db.Conn(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { discardConn(conn) })
	_, err = conn.ExecContext(t.Context(), "SELECT pg_advisory_lock_shared("+pgOwnerLock+")", pgOwnerKey(owner))
	require.NoError(t, err)
}

// recordOwner records owner as an owner lock holder without holding its
// lock, as a process that died left it.
func recordOwner(t *testing.T, r *Repository, owner string) {
	t.Helper()
	_, err := r.db.ExecContext(t.Context(), "INSERT INTO jobs_owners (owner, lock_key, epoch, held_at) VALUES (?, ?, 1, now())",
		owner, pgOwnerKey(owner))
	require.NoError(t, err)
}

func TestPGHoldOwner(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	r, other := openTestPG(t, dsn, 0), openTestPG(t, dsn, 0)
	ctx := t.Context()

	release, err := r.HoldOwner(ctx, "w1")
	require.NoError(t, err)
	held, epoch := pgOwnerHeld(t, r, "w1")
	require.True(t, held)
	require.EqualValues(t, 1, epoch)
	_, err = other.HoldOwner(ctx, "w1")
	require.ErrorIs(t, err, jobs.ErrConflict, "an owner name is held once")

	release()
	release() // idempotent
	require.Eventually(t, func() bool { held, epoch = pgOwnerHeld(t, r, "w1"); return !held && epoch == 0 },
		5*time.Second, 10*time.Millisecond, "a clean release frees the lock and removes the record")
	release, err = other.HoldOwner(ctx, "w1")
	require.NoError(t, err, "free again")
	release()
	_, err = r.HoldOwner(ctx, "")
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

// TestPGOwnerTakesLockBack: an administrator ends every session of a live
// owner's process (its lock's and its pool's), again and again. The owner
// takes its lock back on a new session each time (a new epoch), past the
// pool's stale sessions, and a rescuer in another repository that checks
// all along never rescues its running jobs.
func TestPGOwnerTakesLockBack(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	app := "owner_back_" + strings.ToLower(rand.Text()[:8])
	r, rescuer := openTestPG(t, dsn+"&application_name="+app, 0), openTestPG(t, dsn, 0)
	ctx := t.Context()
	release, err := r.HoldOwner(ctx, "live")
	require.NoError(t, err)
	defer release()
	js := claimAs(t, r, "live", 3)
	fillPool := func() { // idle sessions for the pool to hand out stale
		var g errgroup.Group
		for range 8 {
			g.Go(func() error { _, err := r.db.ExecContext(ctx, "SELECT pg_sleep(0.01)"); return err })
		}
		require.NoError(t, g.Wait())
	}

	stop := make(chan struct{})
	checks := make(chan int, 1)
	go func() {
		n := 0
		defer func() { checks <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := rescuer.RescueDead(ctx, 100)
			if err != nil || len(got) > 0 {
				t.Errorf("rescue of a live owner: %d jobs, %v", len(got), err)
				return
			}
			n++
		}
	}()
	var slowest time.Duration
	_, epoch := pgOwnerHeld(t, rescuer, "live")
	for range 5 {
		fillPool()
		var ended int
		require.NoError(t, rescuer.db.QueryRowContext(ctx,
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?", app).Scan(&ended))
		require.Greater(t, ended, 2, "the lock's session and the pool's")
		start := time.Now()
		// A newer epoch, not necessarily the next: the owner may retake
		// on a stale pool session that the same termination ended, and
		// then again. 15 s: CI runs this under -race beside other suites.
		prev := epoch
		require.Eventually(t, func() bool {
			var held bool
			held, epoch = pgOwnerHeld(t, rescuer, "live")
			return held && epoch > prev
		}, 15*time.Second, time.Millisecond, "lock taken back at a new epoch")
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("lock back after the sessions ended: slowest %v of 5", slowest)
	close(stop)
	require.Positive(t, <-checks)
	var got []*jobs.Job
	_, err = rescuer.judgeOwnersPG(ctx, 100, &got) // a look now (RescueDead may skip one)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, rescuer.owners.suspects, "held again: no suspicion left to come due")
	for _, j := range js {
		got, err := r.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusRunning, got.Status)
		require.Equal(t, "live", got.LeaseOwner)
	}
}

// TestPGRescueDeadOwner: an owner whose lock stays free is rescued once the
// grace has passed; an owner that holds its lock (here from another
// session, as another process would), one without a record (an older
// version) and this repository's own are not.
func TestPGRescueDeadOwner(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	r := openTestPG(t, dsn, 0)
	ctx := t.Context()
	_, err := r.RescueDead(ctx, 100) // a first look, before "dead" died
	require.NoError(t, err)

	dead := claimAs(t, r, "dead", 3)
	recordOwner(t, r, "dead")
	recordOwner(t, r, "alive")
	lockElsewhere(t, r, "alive")
	alive := claimAs(t, r, "alive", 1)
	old := claimAs(t, r, "old", 1)
	release, err := r.HoldOwner(ctx, "me")
	require.NoError(t, err)
	defer release()
	mine := claimAs(t, r, "me", 1)

	// Sessions that other tests end in this database meanwhile make the
	// grace pgOwnerKilledGrace from the last of them: keep looking.
	start := time.Now()
	var got []*jobs.Job
	for len(got) == 0 && time.Since(start) < time.Minute {
		got, err = r.RescueDead(ctx, 100)
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, time.Since(start), pgOwnerGrace, "judged only after the grace")
	require.ElementsMatch(t, ids(dead), ids(got))
	for _, j := range got {
		require.Equal(t, jobs.StatusPending, j.Status)
		require.Empty(t, j.LeaseOwner)
		require.Equal(t, rules.OwnerDied, j.Errors[0].Error)
	}
	_, epoch := pgOwnerHeld(t, r, "dead")
	require.Zero(t, epoch, "the record of a rescued owner goes")
	for _, j := range append(append(alive, old...), mine...) {
		got, err := r.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusRunning, got.Status, "job of %s", j.LeaseOwner)
	}
	got, err = r.RescueDead(ctx, 100)
	require.NoError(t, err)
	require.Empty(t, got, "nothing more")
}

// TestPGRescueDeadOwnerComesBack: a suspect whose epoch changes (it took
// its lock back and lost it again) starts a new grace, and one that holds
// its lock when the grace has passed is not rescued.
func TestPGRescueDeadOwnerComesBack(t *testing.T) {
	t.Parallel()
	r := openTestPG(t, testdb.PostgresDSN(t), 0)
	ctx := t.Context()
	claimAs(t, r, "w", 2)
	var rescued []*jobs.Job
	_, err := r.judgeOwnersPG(ctx, 100, &rescued) // a first look
	require.NoError(t, err)
	recordOwner(t, r, "w")

	due, err := r.judgeOwnersPG(ctx, 100, &rescued)
	require.NoError(t, err)
	require.False(t, due.IsZero(), "a suspect")
	_, err = r.db.ExecContext(ctx, "UPDATE jobs_owners SET epoch = epoch + 1 WHERE owner = 'w'")
	require.NoError(t, err)
	time.Sleep(time.Until(due))
	due2, err := r.judgeOwnersPG(ctx, 100, &rescued)
	require.NoError(t, err)
	require.Empty(t, rescued, "a new epoch: the grace starts again")
	require.True(t, due2.After(due))

	lockElsewhere(t, r, "w")
	time.Sleep(time.Until(due2))
	due3, err := r.judgeOwnersPG(ctx, 100, &rescued)
	require.NoError(t, err)
	require.Empty(t, rescued, "holding its lock again")
	require.True(t, due3.IsZero(), "no suspect left")

	// The lock is taken between the look and the rescue: the rescue's own
	// try of the lock fails, and nothing is rescued.
	js, err := r.rescueOwnerPG(ctx, "w", pgOwnerKey("w"), 2, 100)
	require.NoError(t, err)
	require.Empty(t, js)
}

// TestPGKilledSessionsLengthenTheGrace: when the server ended a session
// (here one of the repository's own) between the look before an owner's
// lock was seen free and the look that sees it, that owner may be a live
// process whose sessions were all ended: it gets pgOwnerKilledGrace, not
// pgOwnerGrace, to come back. So does an owner seen free by a
// repository's first look.
func TestPGKilledSessionsLengthenTheGrace(t *testing.T) {
	t.Parallel()
	r := openTestPG(t, testdb.PostgresDSN(t), 0)
	ctx := t.Context()
	claimAs(t, r, "w", 1)
	var rescued []*jobs.Job
	_, err := r.judgeOwnersPG(ctx, 100, &rescued) // a first look
	require.NoError(t, err)
	recordOwner(t, r, "w")
	conn, err := r.db.Conn(ctx)
	require.NoError(t, err)
	var pid int
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	var ended bool
	require.NoError(t, r.db.QueryRowContext(ctx, "SELECT pg_terminate_backend(?)", pid).Scan(&ended))
	require.True(t, ended)
	discardConn(conn)
	// The counter moves when the ended session's process has exited.
	require.Eventually(t, func() bool {
		var k int64
		require.NoError(t, r.db.QueryRowContext(ctx, pgKilledSQL).Scan(&k))
		return k != r.owners.look.killed
	}, 5*time.Second, time.Millisecond)

	due, err := r.judgeOwnersPG(ctx, 100, &rescued)
	require.NoError(t, err)
	require.Empty(t, rescued)
	require.Greater(t, time.Until(due), pgOwnerKilledGrace-time.Second, "the long grace")
	require.True(t, r.owners.suspects["w"].killed)

	// A repository's first look has nothing to compare with: an owner it
	// finds free gets the long grace too.
	fresh := openTestPG(t, testdb.PostgresDSN(t), 0)
	claimAs(t, fresh, "v", 1)
	recordOwner(t, fresh, "v")
	_, err = fresh.judgeOwnersPG(ctx, 100, &rescued)
	require.NoError(t, err)
	require.Empty(t, rescued)
	require.True(t, fresh.owners.suspects["v"].killed)
}

func TestPGOwnerLocksNeedTwoConnections(t *testing.T) {
	t.Parallel()
	r := openTestPG(t, testdb.PostgresDSN(t), 1)
	_, err := r.HoldOwner(t.Context(), "w1")
	require.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

func ids(js []*jobs.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID.String()
	}
	return out
}

// TestPGHoldOwnerSweepsIdleDeadOwners: taking an owner lock removes the
// records of owners that died with no running job (nobody would judge
// them), a minute after they last took their lock; an owner with running
// jobs and one that holds its lock keep theirs.
func TestPGHoldOwnerSweepsIdleDeadOwners(t *testing.T) {
	t.Parallel()
	r := openTestPG(t, testdb.PostgresDSN(t), 0)
	ctx := t.Context()
	for _, owner := range []string{"gone", "busy", "held", "recent"} {
		recordOwner(t, r, owner)
	}
	_, err := r.db.ExecContext(ctx, "UPDATE jobs_owners SET held_at = now() - interval '2 minutes' WHERE owner <> 'recent'")
	require.NoError(t, err)
	claimAs(t, r, "busy", 1)
	lockElsewhere(t, r, "held")

	release, err := r.HoldOwner(ctx, "w")
	require.NoError(t, err)
	defer release()
	var left []string
	require.NoError(t, r.db.NewSelect().Table("jobs_owners").Column("owner").Order("owner").Scan(ctx, &left))
	require.Equal(t, []string{"busy", "held", "recent", "w"}, left)
}
