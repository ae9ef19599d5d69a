package proctest

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrand"
)

// TestGraphAcrossProcesses: a random graph of jobs (each depends on up to
// three of the 200 jobs created just before it: chains, fan-out, fan-in
// and diamonds), one in 400 of which fails, is created in calls of
// 1 000 jobs (a call's jobs name earlier calls' by ID, often after those
// ended) while 4 worker processes drain it, one of them killed with
// SIGKILL and replaced. Pass: no job starts before every job it depends
// on wrote its last "done" (the ledgers' wall clocks); every job ends
// exactly as the graph says: failed where it fails, canceled where one
// of its dependencies did not succeed, succeeded otherwise.
//
// The default run is 2 000 jobs; the long suite runs 10 000. Like
// TestBatchesAcrossProcesses it runs before the parallel tests, not beside
// them: its load on two cores would stretch the timing of the crash
// tests, whose 1 s leases then expire under their first attempts.
func TestGraphAcrossProcesses(t *testing.T) {
	n := 2000
	if os.Getenv(envLong) != "" {
		n = 10000
	}
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			rng := testrand.New(t)
			c := newCluster(t, backend, childConfig{Workers: 4, Lease: time.Second, Poll: 50 * time.Millisecond}, "")
			c.startN(4)
			ids := make([]uuid.UUID, n)
			parents := make([][]int, n)
			fails := make([]bool, n)
			killed := false
			begin := time.Now() // the processes work while the graph is created
			for lo := 0; lo < n; lo += 1000 {
				batch := make([]*jobs.Job, min(1000, n-lo))
				for k := range batch {
					i := lo + k
					fails[i] = rng.IntN(400) == 0
					p, _ := json.Marshal(nodePayload{Fail: fails[i]})
					j := &jobs.Job{Kind: kindNode, Payload: p, MaxAttempts: 20}
					for range rng.IntN(4) {
						if i == 0 {
							break
						}
						d := i - 1 - rng.IntN(min(i, 200))
						parents[i] = append(parents[i], d)
						if d >= lo {
							j.After = append(j.After, batch[d-lo])
						} else {
							j.DependsOn = append(j.DependsOn, ids[d])
						}
					}
					batch[k] = j
				}
				require.NoError(t, c.repo.Create(t.Context(), batch...))
				for k, j := range batch {
					ids[lo+k] = j.ID
				}
				if !killed && lo+1000 >= n/2 {
					ps := c.running()
					ps[rng.IntN(len(ps))].kill(t)
					c.start()
					killed = true
				}
			}
			c.waitFinished(n, 10*time.Minute)
			took := time.Since(begin)
			c.stopAll()

			want := make([]jobs.Status, n)
			for i := range want {
				want[i] = jobs.StatusSucceeded
				for _, d := range parents[i] {
					if want[d] != jobs.StatusSucceeded {
						want[i] = jobs.StatusCanceled
					}
				}
				if want[i] == jobs.StatusSucceeded && fails[i] {
					want[i] = jobs.StatusFailed
				}
			}
			l := readLedgers(t, c.dir)
			counts := map[jobs.Status]int{}
			for i, id := range ids {
				got := c.job(id)
				require.Equal(t, want[i], got.Status, "job %d %s: %s", i, id, got.Error)
				counts[got.Status]++
				first := firstAt(l, id, "start")
				if want[i] == jobs.StatusCanceled {
					require.True(t, first.IsZero(), "job %d was canceled by a dependency yet started", i)
					continue
				}
				require.False(t, first.IsZero(), "job %d never started", i)
				for _, d := range parents[i] {
					require.True(t, lastAt(l, ids[d], "done").Before(first), "job %d started before its dependency %d was done", i, d)
				}
			}
			t.Logf("%s: %d jobs, %v (%.0f jobs/s): %v", backend, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), counts)
		})
	}
}

// TestBatchesAcrossProcesses: batches of jobs, each with a callback, are
// drained by 4 worker processes; a batch's last jobs end in different
// processes at nearly the same instant. Pass: every callback runs exactly
// once (one "start" in all the ledgers), after every job of its batch
// wrote "done", and ends succeeded.
//
// The default run is 10 batches of 100 jobs; the long suite runs 100
// batches of 1 000. On PostgreSQL each end of a batch's job updates the
// batch's row, so the stores of one batch's ends commit one after the
// other, a commit waiting for a flush of several milliseconds here: each
// process runs 16 workers there, so that a store carries up to 16 ends
// rather than 4 (4 workers drained about 900 jobs/s, 16 about 2 800), and
// stores often hold ends of two batches (which once deadlocked: see
// pgBatchProgressFunc in jobsbun).
func TestBatchesAcrossProcesses(t *testing.T) {
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			batches, size := 10, 100
			if os.Getenv(envLong) != "" {
				batches, size = 100, 1000
			}
			workers := 4
			if backend == "postgres" {
				workers = 16
			}
			c := newCluster(t, backend, childConfig{Workers: workers, Lease: 5 * time.Second, Poll: 50 * time.Millisecond}, "")
			c.startN(4)
			callbacks := make([]uuid.UUID, batches)
			members := make([][]uuid.UUID, batches)
			begin := time.Now() // the processes work while the batches are created
			for b := range batches {
				js := make([]*jobs.Job, size+1)
				for i := range size {
					js[i] = &jobs.Job{Kind: kindNode, Payload: json.RawMessage(`{}`)}
				}
				js[size] = &jobs.Job{Kind: kindJoin, Batch: true, After: js[:size]}
				require.NoError(t, c.repo.Create(t.Context(), js...))
				callbacks[b] = js[size].ID
				for _, j := range js[:size] {
					members[b] = append(members[b], j.ID)
				}
			}
			c.waitFinished(batches*(size+1), 10*time.Minute)
			took := time.Since(begin)
			c.stopAll()
			l := readLedgers(t, c.dir)
			for b, id := range callbacks {
				require.Equal(t, jobs.StatusSucceeded, c.job(id).Status, "callback of batch %d", b)
				require.Equal(t, 1, l.count(id, "start"), "callback of batch %d started once", b)
				start := firstAt(l, id, "start")
				for _, m := range members[b] {
					require.True(t, lastAt(l, m, "done").Before(start), "callback of batch %d started before its job %s was done", b, m)
				}
			}
			t.Logf("%s: %d batches of %d jobs, %v (%.0f jobs/s)", backend, batches, size, took.Round(time.Millisecond),
				float64(batches*(size+1))/took.Seconds())
		})
	}
}

// firstAt is the wall clock of the job's first entry of event, or zero.
func firstAt(l *ledger, id uuid.UUID, event string) time.Time {
	var first time.Time
	for _, e := range l.byJob[id] {
		if e.event == event && (first.IsZero() || e.at().Before(first)) {
			first = e.at()
		}
	}
	return first
}

// lastAt is the wall clock of the job's last entry of event, or zero.
func lastAt(l *ledger, id uuid.UUID, event string) time.Time {
	var last time.Time
	for _, e := range l.byJob[id] {
		if e.event == event && e.at().After(last) {
			last = e.at()
		}
	}
	return last
}
