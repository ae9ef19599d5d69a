package proctest

import (
	"os"
	"slices"
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
// owner is dead (its owner lock is free), rescues the job and runs it:
// kill → the job's second start within 200 ms median, 1 s at most, over
// 20 kills in the long suite (one kill by default). SQLite only: on
// PostgreSQL dead owners still wait for their leases.
func TestKillTakeover(t *testing.T) {
	t.Parallel()
	iterations := 1
	if os.Getenv(envLong) != "" {
		iterations = 20
	}
	c := newCluster(t, "sqlite", childConfig{Workers: 2}, "") // default lease and poll
	c.startN(2)
	var took []time.Duration
	var ids []uuid.UUID
	for range iterations {
		id := c.enqueue(1, kindBlock1, nil, nil)[0]
		l := c.waitLedger(10*time.Second, func(l *ledger) bool { return l.count(id, "start") == 1 })
		victim := l.byJob[id][0].pid
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
		took = append(took, again.at().Sub(killed))

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
		ids = append(ids, id)
		c.start() // the replacement
	}
	l := readLedgers(t, c.dir)
	for _, id := range ids {
		require.Equal(t, 1, l.count(id, "rescued"), "job %s rescued once", id)
	}
	slices.Sort(took)
	median, worst := took[len(took)/2], took[len(took)-1]
	t.Logf("sqlite: %d kills, default lease: kill → running in another process: median %v, max %v", len(took),
		median.Round(time.Millisecond), worst.Round(time.Millisecond))
	if len(took) >= 10 {
		require.LessOrEqual(t, median, 200*time.Millisecond, "median kill → running elsewhere")
	}
	require.LessOrEqual(t, worst, time.Second, "max kill → running elsewhere")
}

// TestPauseNoTakeover: a worker process is SIGSTOPped for half a lease
// while its job runs, then continued. A paused process keeps its owner
// lock, so the other processes' dead-owner checks (every 100 ms) never
// take its job: each job is finished once, by its own worker, in its
// first attempt, and nothing is rescued. 20 pauses in the long suite, one
// by default.
func TestPauseNoTakeover(t *testing.T) {
	t.Parallel()
	iterations, lease := 1, 2*time.Second
	if os.Getenv(envLong) != "" {
		iterations, lease = 20, 4*time.Second
	}
	pause := lease / 2
	c := newCluster(t, "sqlite", childConfig{Workers: 2, Lease: lease, Poll: 50 * time.Millisecond}, "")
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
	require.Empty(t, l.events("fenced"), "refused writes")
	t.Logf("sqlite: %d pauses of %v (lease %v): 0 takeovers, each job finished once by its own worker", iterations, pause, lease)
}
