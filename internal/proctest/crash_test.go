package proctest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/internal/testrand"
	"github.com/stretchr/testify/require"
)

// TestKillMidJob is CF-1: a worker process is SIGKILLed while its job runs
// (the job has written "start" and blocks), and a replacement process is
// started. With a 1 s lease, another process re-runs the job exactly once
// more and completes it soon after the kill. The long suite repeats this 20
// times per backend and checks the median and the maximum time from the
// kill to the job's completion; the default run does it once on SQLite.
func TestKillMidJob(t *testing.T) {
	t.Parallel()
	iterations, backends := 1, []string{"sqlite"}
	if os.Getenv(envLong) != "" {
		iterations, backends = 20, backendNames
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, backend, childConfig{Workers: 2, Lease: time.Second, Poll: 50 * time.Millisecond}, "")
			c.startN(2)
			var took []time.Duration
			for range iterations {
				id := c.enqueue(1, kindBlock1, nil, nil)[0]
				l := c.waitLedger(10*time.Second, func(l *ledger) bool { return l.count(id, "start") == 1 })
				victim := l.byJob[id][0].pid
				c.proc(victim).kill(t)
				killed := time.Now()
				c.start() // the replacement

				var j *jobs.Job
				require.Eventually(t, func() bool {
					j = c.job(id)
					return j.Status.Terminal()
				}, 10*time.Second, 5*time.Millisecond)
				require.Equal(t, jobs.StatusSucceeded, j.Status)
				require.Equal(t, 2, j.Attempt, "one attempt killed, one more that succeeded")
				took = append(took, j.FinishedAt.Sub(killed))

				l = readLedgers(t, c.dir)
				require.Equal(t, 2, l.count(id, "start"), "re-run exactly once more")
				require.Equal(t, 1, l.count(id, "done"))
				for _, e := range l.byJob[id] {
					if e.event == "done" {
						require.NotEqual(t, victim, e.pid, "done by another process")
					}
				}
			}
			slices.Sort(took)
			median, worst := took[len(took)/2], took[len(took)-1]
			t.Logf("%s: %d kills, kill → succeeded: median %v, max %v (lease 1s)", backend, len(took),
				median.Round(time.Millisecond), worst.Round(time.Millisecond))
			if len(took) >= 10 { // one sample of a loaded -race run is no median
				require.LessOrEqual(t, median, 1500*time.Millisecond, "median kill → completion")
			}
			require.LessOrEqual(t, worst, 3*time.Second, "max kill → completion")
		})
	}
}

// TestSoakRandomKills is the soak of CF-1 on PostgreSQL: 1 000 jobs on 3
// worker processes while 10 random SIGKILLs hit them (each followed by a
// replacement). Nothing is lost and every job is done exactly once, except
// that a process killed after a job's side effect (its "done" line) but
// before the outcome was committed has that job run again: delivery is
// at-least-once, and the ledger must explain every extra "done" by a kill.
func TestSoakRandomKills(t *testing.T) {
	long(t)
	t.Parallel()
	rng := testrand.New(t)
	c := newCluster(t, "postgres", childConfig{Workers: 4, Lease: time.Second, Poll: 50 * time.Millisecond}, "")
	c.startN(3)
	const n = 1000
	ids := make([]uuid.UUID, 0, n)
	batch := make([]*jobs.Job, n)
	for i := range batch {
		p, _ := json.Marshal(workPayload{MS: 20 + rng.IntN(100)}) // ~6 s of work for 12 workers
		batch[i] = &jobs.Job{Kind: kindWork, Payload: p, MaxAttempts: 20}
	}
	require.NoError(t, c.repo.Create(t.Context(), batch...))
	for _, j := range batch {
		ids = append(ids, j.ID)
	}

	killed := map[int]bool{}
	began := time.Now()
	for range 10 {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		ps := c.running()
		victim := ps[rng.IntN(len(ps))]
		victim.kill(t)
		killed[victim.pid] = true
		c.start()
	}
	killing := time.Since(began)
	c.waitFinished(n, 2*time.Minute)
	took := time.Since(began)

	l := readLedgers(t, c.dir)
	extra := 0
	for _, id := range ids {
		j := c.job(id)
		require.Equal(t, jobs.StatusSucceeded, j.Status, "job %s", id)
		byKilled, byLive := 0, 0
		for _, e := range l.byJob[id] {
			if e.event == "done" {
				if killed[e.pid] {
					byKilled++
				} else {
					byLive++
				}
			}
		}
		done := byKilled + byLive
		require.GreaterOrEqual(t, done, 1, "job %s has no side effect", id)
		require.LessOrEqual(t, byLive, 1, "job %s done twice by live processes", id)
		require.LessOrEqual(t, done, 1+byKilled, "every extra done of job %s comes from a killed process", id)
		extra += done - 1
	}
	checkNoBusyErrors(t, l)
	checkAttemptsWithinLimit(t, c)
	require.Greater(t, took, killing, "the kills must land while jobs run")
	t.Logf("soak: %d jobs, %d kills over %v, all succeeded after %v; %d side effects repeated "+
		"because a process died between the side effect and the commit (at-least-once)", n, len(killed),
		killing.Round(time.Millisecond), took.Round(time.Millisecond), extra)
}

// TestPausedProcessIsFenced is CF-5: a worker process is SIGSTOPped while
// its job runs, for three leases. Another process rescues and completes the
// job. After SIGCONT, the paused process's writes are refused by fencing,
// its handler's context is cancelled with ErrLeaseLost, and the job stays
// completed once, by the other process.
func TestPausedProcessIsFenced(t *testing.T) {
	long(t)
	t.Parallel()
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const lease = time.Second
			c := newCluster(t, backend, childConfig{Workers: 2, Lease: lease, Poll: 50 * time.Millisecond}, "")
			c.startN(2)
			id := c.enqueue(1, kindPause1, nil, nil)[0]
			l := c.waitLedger(10*time.Second, func(l *ledger) bool { return l.count(id, "start") == 1 })
			paused := c.proc(l.byJob[id][0].pid)
			paused.signal(t, syscall.SIGSTOP)
			stopped := time.Now()
			require.Eventually(t, func() bool { return c.job(id).Status.Terminal() }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(time.Until(stopped.Add(3 * lease)))
			paused.signal(t, syscall.SIGCONT)

			l = c.waitLedger(10*time.Second, func(l *ledger) bool {
				for _, e := range l.events("ctxdone") {
					if e.id == id && e.pid == paused.pid {
						return true
					}
				}
				return false
			})
			fenced := 0
			for _, e := range l.byJob[id] {
				switch {
				case e.event == "ctxdone":
					require.Equal(t, paused.pid, e.pid)
					require.Equal(t, string(jobs.ErrLeaseLost), e.rest, "the handler's context ends with ErrLeaseLost")
				case e.event == "fenced":
					require.Equal(t, paused.pid, e.pid, "only the paused process was fenced")
					fenced++
				case e.event == "done":
					require.NotEqual(t, paused.pid, e.pid)
				}
			}
			// Its late writes, if it makes any, are refused. It may make
			// none: when its heartbeat after SIGCONT is slow (a loaded
			// host), its runner gives the lease up by its own clock first,
			// which is as safe. This failed in about 1 of 3 loaded runs
			// before the count was allowed to be zero, at every version.
			require.Equal(t, 1, l.count(id, "done"))
			require.Equal(t, 2, l.count(id, "start"))
			j := c.job(id)
			require.Equal(t, jobs.StatusSucceeded, j.Status)
			require.Equal(t, 2, j.Attempt)
			require.True(t, strings.HasPrefix(j.Progress.Message, "done by "), "progress %q was overwritten", j.Progress.Message)
			require.NotEqual(t, fmt.Sprintf("done by %d", paused.pid), j.Progress.Message)
			t.Logf("%s: paused process made %d fenced writes after SIGCONT (0: it gave its lease up first)", backend, fenced)
		})
	}
}

// TestConnectionDrop is CF-9: during a 5 000-job run on PostgreSQL, every
// connection of the worker processes (their pools and listeners, found by
// application_name) is terminated several times. Nothing is lost, nothing
// is done twice, and after each drop jobs complete again within 5 s.
func TestConnectionDrop(t *testing.T) {
	long(t)
	t.Parallel()
	app := "jobs_drop_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	c := newCluster(t, "postgres", childConfig{Workers: 4, Lease: 2 * time.Second, Poll: 50 * time.Millisecond}, app)
	c.startN(2)
	const n = 5000
	ids := c.enqueue(n, kindWork, workPayload{MS: 10}, nil)
	succeeded := func() int {
		s, err := c.repo.Stats(t.Context())
		require.NoError(t, err)
		return s.ByStatus[jobs.StatusSucceeded]
	}
	var recoveries []time.Duration
	drops := 0
	for succeeded() < n*8/10 {
		time.Sleep(500 * time.Millisecond)
		before := succeeded()
		if before >= n*9/10 {
			break
		}
		var ended int
		require.NoError(t, c.repo.DB().QueryRowContext(t.Context(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?", app).Scan(&ended))
		dropped := time.Now()
		drops++
		require.Positive(t, ended, "no worker connection found to terminate")
		require.Eventually(t, func() bool { return succeeded() > before+10 }, 5*time.Second, 5*time.Millisecond,
			"jobs did not complete again within 5s of the drop")
		recoveries = append(recoveries, time.Since(dropped))
	}
	c.waitFinished(n, 2*time.Minute)
	c.stopAll()
	l := readLedgers(t, c.dir)
	checkExactlyOnce(t, l, ids)
	slices.Sort(recoveries)
	require.GreaterOrEqual(t, drops, 3, "the run was too short to drop connections several times")
	t.Logf("connection drops: %d; progress again after a drop: median %v, max %v", drops,
		recoveries[len(recoveries)/2].Round(time.Millisecond), recoveries[len(recoveries)-1].Round(time.Millisecond))
}

// TestSeveralRescuers is CC-6: 2 000 jobs are claimed by a runner that then
// vanishes, and four worker processes, each with its own rescuer, race to
// requeue them when the leases expire together. Each expired lease is
// requeued exactly once: one "rescued" record and one "lease expired"
// attempt error per job, attempt 2 at the end, and one run.
func TestSeveralRescuers(t *testing.T) {
	long(t)
	t.Parallel()
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			// The rescuers' own lease is long: this suite is about the
			// ghost's leases, and on a saturated CI host a live rescuer
			// has been seen unable to reach the database for 3 s, which
			// with a 1 s lease hands its own jobs to the others (an
			// at-least-once rerun that is not what this suite checks).
			c := newCluster(t, backend, childConfig{Workers: 4, Lease: 4 * time.Second, Poll: 50 * time.Millisecond}, "")
			const n = 2000
			ids := c.enqueue(n, kindNoop, nil, nil)
			const ghostLease = 5 * time.Second
			claimed := 0
			for claimed < n {
				js, err := c.repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "ghost", Limit: rules.MaxClaimLimit, LeaseDuration: ghostLease})
				require.NoError(t, err)
				claimed += len(js)
			}
			began := time.Now()
			c.startN(4)
			require.Less(t, time.Since(began), ghostLease, "all rescuers must be up before the leases expire")
			c.waitFinished(n, 2*time.Minute)
			c.stopAll()

			l := readLedgers(t, c.dir)
			checkExactlyOnce(t, l, ids)
			rescuers := map[int]int{}
			unreported := 0
			for _, id := range ids {
				// A rescue whose reply was cut off by the runner's deadline
				// committed without being reported: the database's own
				// record (one "lease expired" error) is the proof below.
				switch l.count(id, "rescued") {
				case 0:
					unreported++
				case 1:
				default:
					t.Fatalf("job %s requeued more than once", id)
				}
				j := c.job(id)
				require.Equal(t, jobs.StatusSucceeded, j.Status)
				require.Equal(t, 2, j.Attempt)
				expired := 0
				for _, e := range j.Errors {
					if e.Error == "lease expired" {
						expired++
					}
				}
				require.Equal(t, 1, expired, "job %s: attempt errors %v", id, j.Errors)
			}
			for _, e := range l.events("rescued") {
				rescuers[e.pid]++
			}
			rescueErrs := 0
			for _, e := range l.events("error") {
				if strings.Contains(e.rest, "rescue") {
					rescueErrs++
				}
			}
			if unreported > 0 {
				require.Positive(t, rescueErrs, "%d rescues unreported without a failed rescue call", unreported)
			}
			t.Logf("%s: %d expired leases requeued once each, reported by process: %v; %d rescued by calls "+
				"whose reply was cut off (%d failed rescue calls)", backend, n, rescuers, unreported, rescueErrs)
		})
	}
}
