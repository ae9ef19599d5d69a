package proctest

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// TestKillTakeover: a worker process is SIGKILLed while its job runs, with
// the DEFAULT lease (30 s). Another live process sees at once that the
// owner is dead (its owner lock is free: a lock file on SQLite, an
// advisory lock on PostgreSQL), rescues the job and runs it: kill → the
// job's second start within 200 ms median, 1 s at most, over 20 kills per
// backend in the long suite (one kill by default). Not parallel: it
// measures latency, and runs while the parallel suites wait.
func TestKillTakeover(t *testing.T) {
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) { killTakeover(t, backend) })
	}
}

func killTakeover(t *testing.T, backend string) {
	iterations := 1
	if os.Getenv(envLong) != "" {
		iterations = 20
	}
	c := newCluster(t, backend, childConfig{Workers: 2}, "") // default lease and poll
	c.startN(2)
	var took, found []time.Duration
	var ids []uuid.UUID
	ended := 0 // kills timed out of the figures: sessions ended elsewhere meanwhile
	for range iterations {
		id := c.enqueue(1, kindBlock1, nil, nil)[0]
		l := c.waitLedger(10*time.Second, func(l *ledger) bool { return l.count(id, "start") == 1 })
		victim := l.byJob[id][0].pid
		before := sessionsKilled(t, c)
		killed := time.Now()
		c.proc(victim).kill(t)

		l = c.waitLedger(5*time.Second, func(l *ledger) bool { return l.count(id, "start") == 2 })
		var again entry
		for _, e := range l.byJob[id] {
			if e.event == "start" && e.attempt == 2 {
				again = e
			}
		}
		require.NotEqual(t, victim, again.pid, "run again by another process")
		// On PostgreSQL a session ended by the server around the kill (a
		// test of another package ending its connections) gives the dead
		// owner the long grace, as it must: such a kill is not timed.
		timed := sessionsKilled(t, c) == before
		if timed {
			took = append(took, again.at().Sub(killed))
		} else {
			ended++
		}

		var j *jobs.Job
		require.Eventually(t, func() bool { j = c.job(id); return j.Status.Terminal() }, 10*time.Second, 5*time.Millisecond)
		require.Equal(t, jobs.StatusSucceeded, j.Status)
		require.Equal(t, 2, j.Attempt)
		require.Len(t, j.Errors, 1)
		require.Equal(t, rules.OwnerDied, j.Errors[0].Error)
		// The rescuer records its rescue after the commit; under load the
		// job may run and finish elsewhere first.
		l = c.waitLedger(5*time.Second, func(l *ledger) bool { return l.count(id, "rescued") >= 1 })
		require.Equal(t, 1, l.count(id, "done"))
		for _, e := range l.byJob[id] {
			if e.event == "rescued" && timed {
				found = append(found, e.at().Sub(killed))
			}
		}
		ids = append(ids, id)
		c.start() // the replacement
	}
	l := readLedgers(t, c.dir)
	for _, id := range ids {
		require.Equal(t, 1, l.count(id, "rescued"), "job %s rescued once", id)
	}
	if ended > 0 {
		t.Logf("%s: %d of %d kills not timed: sessions were ended by the server meanwhile", backend, ended, iterations)
	}
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	slices.Sort(found)
	median, worst := took[len(took)/2], took[len(took)-1]
	t.Logf("%s: %d kills, default lease: kill → running in another process: median %v, max %v (kill → rescue recorded: median %v, max %v)",
		backend, len(took), median.Round(time.Millisecond), worst.Round(time.Millisecond),
		found[len(found)/2].Round(time.Millisecond), found[len(found)-1].Round(time.Millisecond))
	if len(took) >= iterations/2 && len(took) >= 10 {
		require.LessOrEqual(t, median, 200*time.Millisecond, "median kill → running elsewhere")
	}
	require.LessOrEqual(t, worst, time.Second, "max kill → running elsewhere")
}

// TestPauseNoTakeover: a worker process is SIGSTOPped for half a lease
// while its job runs, then continued. A paused process keeps its owner
// lock, so the other processes' dead-owner checks (every 100 ms) never
// take its job: each job is finished once, by its own worker, in its
// first attempt, and nothing is rescued. 20 pauses per backend in the
// long suite, one by default.
func TestPauseNoTakeover(t *testing.T) {
	t.Parallel()
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			pauseNoTakeover(t, backend)
		})
	}
}

func pauseNoTakeover(t *testing.T, backend string) {
	iterations, lease := 1, 2*time.Second
	if os.Getenv(envLong) != "" {
		iterations, lease = 20, 4*time.Second
	}
	pause := lease / 2
	c := newCluster(t, backend, childConfig{Workers: 2, Lease: lease, Poll: 50 * time.Millisecond}, "")
	c.startN(3)
	for range iterations {
		id := c.enqueue(1, kindWork, workPayload{MS: int((pause + 300*time.Millisecond).Milliseconds())}, nil)[0]
		l := c.waitLedger(10*time.Second, func(l *ledger) bool { return l.count(id, "start") == 1 })
		p := c.proc(l.byJob[id][0].pid)
		p.signal(t, syscall.SIGSTOP)
		time.Sleep(pause)
		p.signal(t, syscall.SIGCONT)

		var j *jobs.Job
		require.Eventually(t, func() bool { j = c.job(id); return j.Status.Terminal() }, 10*time.Second, 5*time.Millisecond)
		require.Equal(t, jobs.StatusSucceeded, j.Status)
		require.Equal(t, 1, j.Attempt, "not taken over: attempt errors %v", j.Errors)
		l = readLedgers(t, c.dir)
		require.Equal(t, 1, l.count(id, "start"))
		require.Equal(t, 1, l.count(id, "done"))
		require.Zero(t, l.count(id, "rescued"))
		for _, e := range l.byJob[id] {
			require.Equal(t, p.pid, e.pid, "every line of the job is its own worker's: %+v", e)
		}
	}
	l := readLedgers(t, c.dir)
	require.Empty(t, l.events("rescued"), "takeovers")
	// A renewal that races its own job's outcome is refused (the outcome
	// ended the lease first): harmless, and seen on PostgreSQL, where the
	// two writes run side by side. Any other refused write means a lease
	// was taken from the paused process.
	for _, e := range l.events("fenced") {
		require.True(t, strings.HasPrefix(e.rest, "heartbeat"), "refused write: %+v", e)
		j := c.job(e.id)
		require.True(t, j.Status == jobs.StatusSucceeded && j.Attempt == 1, "refused renewal of a job taken over: %+v", j)
	}
	t.Logf("%s: %d pauses of %v (lease %v): 0 takeovers, each job finished once by its own worker; %d renewals refused after their job's own outcome",
		backend, iterations, pause, lease, len(l.events("fenced")))
}

// TestConnectionDropNoTakeover: on PostgreSQL, every connection of the
// live worker processes (pools and owner locks, found by
// application_name) is terminated while their jobs run, with the DEFAULT
// lease: 20 times in the long suite, 3 by default. The server then frees
// their owner locks, which is what a dead process looks like for an
// instant; each owner takes its lock back on a new connection, so no
// process takes another's jobs: nothing is rescued, no write is fenced,
// and each job finishes once, in its first attempt, by the process that
// started it. Not parallel: an owner has pgOwnerGrace (jobsbun) to open a
// new connection, which a saturated host may not give it (see the jobsbun
// package doc, Dead owners); this runs while the parallel suites wait.
func TestConnectionDropNoTakeover(t *testing.T) {
	drops := 3
	if os.Getenv(envLong) != "" {
		drops = 20
	}
	app := "jobs_owner_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	c := newCluster(t, "postgres", childConfig{Workers: 4, Poll: 50 * time.Millisecond}, app)
	c.startN(3)
	const gap = 300 * time.Millisecond
	run := time.Duration(drops+2) * gap
	ids := c.enqueue(8, kindWork, workPayload{MS: int(run.Milliseconds())}, nil)
	c.waitLedger(10*time.Second, func(l *ledger) bool { return len(l.events("start")) == len(ids) })
	epochs := func() int64 {
		var sum int64
		require.NoError(t, c.repo.DB().QueryRowContext(t.Context(), "SELECT coalesce(sum(epoch), 0) FROM jobs_owners").Scan(&sum))
		return sum
	}
	before := epochs()
	for range drops {
		var ended int
		require.NoError(t, c.repo.DB().QueryRowContext(t.Context(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?", app).Scan(&ended))
		require.GreaterOrEqual(t, ended, 3, "each process's owner connection at least")
		time.Sleep(gap)
	}
	c.waitFinished(len(ids), time.Minute)
	l := readLedgers(t, c.dir)
	require.Empty(t, l.events("rescued"), "takeovers")
	require.Empty(t, l.events("fenced"), "refused writes")
	for _, id := range ids {
		j := c.job(id)
		require.Equal(t, jobs.StatusSucceeded, j.Status)
		require.Equal(t, 1, j.Attempt, "not taken over: attempt errors %v", j.Errors)
		require.Equal(t, 1, l.count(id, "start"))
		require.Equal(t, 1, l.count(id, "done"))
	}
	// The drops ended the owners' sessions, and the owners took their
	// locks back (a new epoch each time): the test did what it says. An
	// owner still connecting again when the next drop comes loses that
	// try, hence not 3 per drop.
	require.GreaterOrEqual(t, epochs()-before, int64(3*drops/2), "owner locks taken back")
	t.Logf("postgres: %d drops of every worker connection, default lease: 0 takeovers, each job finished once by its own worker", drops)
}

// sessionsKilled is PostgreSQL's count of sessions of the database ended by
// the server (0 on SQLite).
func sessionsKilled(t *testing.T, c *cluster) int64 {
	t.Helper()
	if c.cfg.Backend != "postgres" {
		return 0
	}
	var n int64
	require.NoError(t, c.repo.DB().QueryRowContext(t.Context(),
		"SELECT sessions_killed FROM pg_stat_database WHERE datname = current_database()").Scan(&n))
	return n
}
