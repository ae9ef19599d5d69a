package proctest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
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
			if strings.HasPrefix(e.rest, string(jobs.CodeLeaseLost)) {
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

// logOutages logs the figures of one run.
func logOutages(t testing.TB, began time.Time, outs []outage, w *writeLock, drain time.Duration, left int, r outageResult) {
	t.Helper()
	var lengths []string
	var total time.Duration
	for _, o := range outs {
		lengths = append(lengths, fmt.Sprintf("%.1f–%.1fs (%.1fs, lock after %v)", o.held.Sub(began).Seconds(),
			o.released.Sub(began).Seconds(), o.length().Seconds(), o.held.Sub(o.asked).Round(time.Millisecond)))
		total += o.length()
	}
	lock := "BEGIN IMMEDIATE"
	if w.backend == "postgres" {
		lock = "LOCK TABLE jobs IN " + w.mode + " MODE"
	}
	t.Logf("%d outages (%s), %v in all, from the first enqueue: %s", len(outs), lock,
		total.Round(100*time.Millisecond), strings.Join(lengths, ", "))
	t.Logf("drain: %v (%d left); statuses: %v", drain.Round(100*time.Millisecond), left, r.byStatus)
	t.Logf("handler returned success but job not succeeded: %d %v; jobs with 2+ done: %d, 2+ start: %d; "+
		"handlers cancelled by a lost lease: %d", len(r.doneNotSucceeded), r.doneBadStatus, r.twoDone, r.twoStart,
		r.leaseLostHandlers)
	for _, e := range sortedKeys(r.failedBy) {
		f := r.failedBy[e]
		t.Logf("failed with error %q: %d after their handler returned success, %d started but not done, "+
			"%d never started", e, f[0], f[1], f[2])
	}
	t.Logf("ledger events: %v", r.ledgerEvents)
}

// logBadByOutage logs, for each outage, how many of the jobs that did not
// end succeeded although their handler returned success had returned
// during it or before it (since the previous one), and returns one such job
// of each kind to tell the story of, one that returned after the last
// outage first.
func logBadByOutage(t testing.TB, outs []outage, l *ledger, bad []uuid.UUID) (samples []uuid.UUID) {
	t.Helper()
	inside, before := make([]int, len(outs)), make([]int, len(outs))
	after := 0
	sample := func(n int, id uuid.UUID) {
		if n == 1 {
			samples = append(samples, id)
		}
	}
	for _, id := range bad {
		var done time.Time
		for _, e := range l.byJob[id] {
			if e.event == "done" {
				done = e.at()
			}
		}
		i := slices.IndexFunc(outs, func(o outage) bool { return !o.released.Before(done) })
		switch {
		case i < 0:
			after++
			if after == 1 {
				samples = slices.Insert(samples, 0, id)
			}
		case done.Before(outs[i].held):
			before[i]++
			sample(before[i], id)
		default:
			inside[i]++
			sample(inside[i], id)
		}
	}
	var parts []string
	for i, o := range outs {
		parts = append(parts, fmt.Sprintf("#%d (%.1fs): %d+%d", i+1, o.length().Seconds(), inside[i], before[i]))
	}
	t.Logf("of these, returned during+before each outage: %s; after the last: %d", strings.Join(parts, ", "), after)
	return samples
}

// logJobStory logs what happened to one job that did not end succeeded: its
// row, then its ledger lines, the outages around it and the workers' log
// lines about it in time order, in seconds from the first enqueue (fenced
// lines carry no time and come last).
func logJobStory(t testing.TB, c *cluster, began time.Time, outs []outage, l *ledger, logs []logLine, id uuid.UUID, title string) {
	t.Helper()
	type event struct {
		at   time.Time
		text string
	}
	var evs []event
	for _, e := range l.byJob[id] {
		rest := e.rest
		if !e.at().IsZero() { // the time goes first instead
			rest = rest[:max(0, strings.LastIndexByte(rest, ' '))]
		}
		evs = append(evs, event{e.at(), fmt.Sprintf("ledger %s pid %d %s", e.event, e.pid, rest)})
	}
	j := c.job(id)
	for i, o := range outs {
		if o.released.After(j.StartedAt.Add(-outageLease)) && o.held.Before(j.FinishedAt.Add(outageLease)) {
			evs = append(evs, event{o.held, fmt.Sprintf("outage %d begins", i+1)},
				event{o.released, fmt.Sprintf("outage %d ends", i+1)})
		}
	}
	for _, ll := range logs {
		if ll.job == id {
			evs = append(evs, event{ll.at, "log " + ll.text})
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		switch {
		case a.at.IsZero() || b.at.IsZero():
			return cmp.Compare(btoi(a.at.IsZero()), btoi(b.at.IsZero()))
		default:
			return a.at.Compare(b.at)
		}
	})
	rel := func(at time.Time) string { return fmt.Sprintf("%+6.2fs", at.Sub(began).Seconds()) }
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s, error %q, attempt %d, started %s, finished %s", title, id, j.Status,
		j.Error, j.Attempt, rel(j.StartedAt), rel(j.FinishedAt))
	for _, e := range evs {
		at := "      ?"
		if !e.at.IsZero() {
			at = rel(e.at)
		}
		fmt.Fprintf(&b, "\n  %s %s", at, e.text)
	}
	t.Log(b.String())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
