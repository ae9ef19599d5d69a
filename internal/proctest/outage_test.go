package proctest

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrand"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The write-outage scenario: what a backup, a long migration or a VACUUM
// does to a busy queue.
const (
	outageProcs    = 3
	outageWorkers  = 4
	outageJobs     = 3000
	outageLease    = 2 * time.Second
	outageMinHold  = time.Second     // each outage lasts 1–4 s (random)…
	outageMaxHold  = 4 * time.Second // …which is under every busy timeout
	outageGap      = 3 * time.Second // between the end of one outage and the next
	outageWindow   = 30 * time.Second
	outageDeadline = 90 * time.Second // from the first enqueue to the last terminal job
)

// TestWriteOutage is a write outage shorter than the busy timeout, on every
// backend (CF-6 covers outages longer than it): what a backup, a long
// migration or a VACUUM does to a busy queue. 3 worker processes × 4 workers
// run 3 000 jobs of 50–300 ms (random) with a 2 s lease and max attempts 1,
// while a connection of the test process, not a worker, holds the
// database's write lock for 1–4 s (random) every 3 s during the first 30 s
// (or until the jobs are done).
//
// On SQLite the lock is BEGIN IMMEDIATE plus a write. On PostgreSQL it is
// LOCK TABLE jobs IN EXCLUSIVE MODE, the mode that lets only plain reads
// through: every write and every row lock (the claim's FOR UPDATE SKIP
// LOCKED) waits while reads go on, exactly as under SQLite's WAL write lock,
// so both backends see the same outage; writers meet it under a
// non-concurrent CREATE INDEX (SHARE) or an export under LOCK TABLE. A
// second PostgreSQL case takes ACCESS EXCLUSIVE (ALTER TABLE, VACUUM FULL,
// CLUSTER), which stops the reads too: cancel polls and the rescuer's scans
// wait as well.
//
// No outage reaches the busy timeout (jobsqlite's 5 s; the repository
// retries for 30 s), so outages may only delay the jobs. Checked from the
// ledgers and the database, never from the library's counters: no job
// whose handler returned success (ledger "done") ends other than
// succeeded; no job has two "done" or two "start" lines (no process is
// killed or paused, and max attempts 1 allows no second attempt); every job
// ends before the deadline. The figures logged (outages, statuses, stored
// errors, ledger events, the workers' log messages, and the story of a few
// bad jobs against the outages) are there to explain a failure.
func TestWriteOutage(t *testing.T) {
	long(t)
	t.Parallel()
	require.Less(t, outageMaxHold, jobsqlite.DefaultBusyTimeout, "an outage must be within the busy timeout")
	for _, tc := range []struct {
		name, backend string
		mode          string // PostgreSQL's LOCK TABLE mode
	}{
		{"sqlite", "sqlite", ""},
		{"postgres", "postgres", "EXCLUSIVE"},
		{"postgres-access-exclusive", "postgres", "ACCESS EXCLUSIVE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, tc.backend, childConfig{Workers: outageWorkers, Lease: outageLease,
				Poll: 50 * time.Millisecond}, "")
			lock := newWriteLock(t, c, tc.mode)
			c.startN(outageProcs)

			rng := testrand.New(t)
			began := time.Now()
			ids := enqueueOutageJobs(t, c, rng)
			stop := make(chan struct{})
			held := make(chan outageRun, 1)
			go func() { held <- holdOutages(t.Context(), lock, rng, stop, began.Add(outageWindow)) }()
			var run outageRun
			endOutages := sync.OnceFunc(func() {
				close(stop)
				run = <-held
			})
			t.Cleanup(endOutages) // before the workers stop, should the test end early
			drain, left := waitTerminal(t, c, began.Add(outageDeadline))
			endOutages()
			c.stopAll() // every handler has returned: the ledgers are complete
			require.NoError(t, run.err, "holding the write lock")

			l := readLedgers(t, c.dir)
			db := readOutcomes(t, c)
			r := judgeOutage(ids, l, db)
			logOutages(t, began, run.outages, lock, drain, left, r)
			logs := childLog(t, c.dir)
			counts := messageCounts(logs)
			for _, k := range sortedKeys(counts) {
				t.Logf("worker log: %5d × %s", counts[k], k)
			}
			if len(r.doneNotSucceeded) > 0 {
				const lost = "job lease lost; outcome not stored"
				logged := loggedJobs(logs, lost)
				silent := 0
				for _, id := range r.doneNotSucceeded {
					if !logged[id] {
						silent++
					}
				}
				t.Logf("of these, the runner logged %q for %d; for %d it logged nothing, as for a stored outcome",
					lost, len(r.doneNotSucceeded)-silent, silent)
				samples := logBadByOutage(t, run.outages, l, r.doneNotSucceeded)
				for _, id := range samples[:min(5, len(samples))] {
					logJobStory(t, c, began, run.outages, l, logs, id, "done but not succeeded:")
				}
			}
			if len(r.neverStarted) > 0 {
				logJobStory(t, c, began, run.outages, l, logs, r.neverStarted[0], "failed, never started:")
			}

			require.GreaterOrEqual(t, len(run.outages), 3, "too few outages to judge")
			for i, o := range run.outages {
				require.True(t, o.writeBlocked, "outage %d: another connection could still write", i+1)
				require.Equal(t, lock.readsServed(), o.readServed, "outage %d: reads", i+1)
			}
			require.Equal(t, len(run.outages), lock.holds(t), "every outage wrote inside its transaction")
			assert.Zero(t, len(r.doneNotSucceeded), "jobs whose handler returned success did not end succeeded")
			assert.Zero(t, r.twoDone, "jobs done twice")
			assert.Zero(t, r.twoStart, "jobs started twice (max attempts 1)")
			assert.Zero(t, left, "jobs lost: not terminal %v after the first enqueue", outageDeadline)
			checkAttemptsWithinLimit(t, c)
		})
	}
}

// enqueueOutageJobs enqueues the work jobs of 50–300 ms (drawn from rng)
// with max attempts 1.
func enqueueOutageJobs(t testing.TB, c *cluster, rng *rand.Rand) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, 0, outageJobs)
	for len(ids) < outageJobs {
		batch := make([]*jobs.Job, min(1000, outageJobs-len(ids)))
		for i := range batch {
			p, err := json.Marshal(workPayload{MS: 50 + rng.IntN(251)})
			require.NoError(t, err)
			batch[i] = &jobs.Job{Kind: kindWork, Payload: p, MaxAttempts: 1}
		}
		require.NoError(t, c.repo.Create(t.Context(), batch...))
		for _, j := range batch {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// waitTerminal waits until no job is pending or running, or until deadline,
// and returns the time since the first enqueue and how many jobs were left.
func waitTerminal(t testing.TB, c *cluster, deadline time.Time) (time.Duration, int) {
	t.Helper()
	start := deadline.Add(-outageDeadline)
	for {
		var left int
		require.NoError(t, c.repo.DB().QueryRowContext(t.Context(),
			"SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')").Scan(&left))
		if left == 0 || time.Now().After(deadline) {
			return time.Since(start), left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stored is what the database holds of one job at the end.
type stored struct {
	status  jobs.Status
	err     string
	attempt int
}

// readOutcomes reads the status, error and attempt of every job.
func readOutcomes(t testing.TB, c *cluster) map[uuid.UUID]stored {
	t.Helper()
	rows, err := c.repo.DB().QueryContext(t.Context(), "SELECT id, status, error, attempt FROM jobs")
	require.NoError(t, err)
	defer rows.Close()
	m := map[uuid.UUID]stored{}
	for rows.Next() {
		var (
			id uuid.UUID
			s  stored
		)
		require.NoError(t, rows.Scan(&id, &s.status, &s.err, &s.attempt))
		m[id] = s
	}
	require.NoError(t, rows.Err())
	return m
}

// outageResult is the judgement of one run from the ledgers and the
// database.
type outageResult struct {
	byStatus          map[jobs.Status]int
	doneNotSucceeded  []uuid.UUID         // the failures that matter most
	twoDone, twoStart int                 // jobs with 2+ "done" / "start" lines
	failedBy          map[string][3]int   // stored error → failed jobs [done, started only, never started]
	neverStarted      []uuid.UUID         // failed jobs without a ledger line
	leaseLostHandlers int                 // handlers cancelled by a lost lease (ctxdone lease_lost)
	ledgerEvents      map[string]int      // fenced by operation, rescued by status, error by operation
	doneBadStatus     map[jobs.Status]int // the status of the jobs in doneNotSucceeded
}

func judgeOutage(ids []uuid.UUID, l *ledger, db map[uuid.UUID]stored) outageResult {
	r := outageResult{byStatus: map[jobs.Status]int{}, failedBy: map[string][3]int{},
		ledgerEvents: map[string]int{}, doneBadStatus: map[jobs.Status]int{}}
	for _, id := range ids {
		s := db[id]
		r.byStatus[s.status]++
		done, starts := l.count(id, "done"), l.count(id, "start")
		if done >= 2 {
			r.twoDone++
		}
		if starts >= 2 {
			r.twoStart++
		}
		if done > 0 && s.status != jobs.StatusSucceeded {
			r.doneNotSucceeded = append(r.doneNotSucceeded, id)
			r.doneBadStatus[s.status]++
		}
		if s.status == jobs.StatusFailed {
			f := r.failedBy[s.err]
			switch {
			case done > 0:
				f[0]++
			case starts > 0:
				f[1]++
			default:
				f[2]++
				r.neverStarted = append(r.neverStarted, id)
			}
			r.failedBy[s.err] = f
		}
	}
	for _, e := range l.entries {
		switch e.event {
		case "ctxdone":
			if strings.HasPrefix(e.rest, string(jobs.ErrLeaseLost)) {
				r.leaseLostHandlers++
			}
		case "fenced":
			r.ledgerEvents["fenced "+e.rest]++
		case "rescued":
			r.ledgerEvents["rescued to "+strings.Fields(e.rest)[0]]++
		case "error":
			r.ledgerEvents["error "+strings.Fields(e.rest)[1]]++
		}
	}
	return r
}
