package proctest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrand"
	"github.com/stretchr/testify/require"
)

// limitedKind is the limit every worker process declares for kindLimited.
var limitedKind = jobs.Limit{PerKey: 2, Running: 6}

// TestLimitsUnderKills: worker processes run jobs of 50 concurrency keys
// (half of them of two heavy keys) under a per-key limit of 2 and a global limit of 6 while random SIGKILLs
// hit them (each followed by a replacement). From the ledgers, every
// handler's run is an interval from its start to its end, or, in a killed
// process, to the moment the kill was sent: the repository holds the
// job's slot at least that long (until the claim committed before the
// start, and until the outcome or the rescue after the end). At no instant
// do more than 2 intervals of one key, or 6 in all, overlap; every job
// ends succeeded, none lost.
//
// The default run is 1 000 jobs, 2 kills; the long suite runs 20 000 jobs
// with 10 kills. Both on SQLite and PostgreSQL (when its DSN is set).
func TestLimitsUnderKills(t *testing.T) {
	t.Parallel()
	n, kills := 1000, 2
	if os.Getenv(envLong) != "" {
		n, kills = 20000, 10
	}
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			rng := testrand.New(t)
			c := newCluster(t, backend, childConfig{Workers: 4, Lease: time.Second, Poll: 50 * time.Millisecond}, "")
			c.startN(4)
			var ids []uuid.UUID
			for lo := 0; lo < n; lo += 1000 {
				batch := make([]*jobs.Job, min(1000, n-lo))
				for i := range batch {
					p, _ := json.Marshal(workPayload{MS: 2 + rng.IntN(8)})
					// Half the jobs belong to two heavy users, so that the
					// per-key limit binds as well as the global one.
					key := fmt.Sprintf("user-%d", (lo+i)%50)
					if (lo+i)%2 == 1 {
						key = fmt.Sprintf("user-%d", (lo+i)/2%2)
					}
					batch[i] = &jobs.Job{Kind: kindLimited, Payload: p, MaxAttempts: 50, ConcurrencyKey: key}
				}
				require.NoError(t, c.repo.Create(t.Context(), batch...))
				for _, j := range batch {
					ids = append(ids, j.ID)
				}
			}
			began := time.Now()
			killedAt := map[int]time.Time{} // pid → when SIGKILL was sent
			for range kills {
				time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
				ps := c.running()
				victim := ps[rng.IntN(len(ps))]
				killedAt[victim.pid] = time.Now()
				victim.kill(t)
				c.start()
			}
			c.waitFinished(n, 10*time.Minute)
			took := time.Since(began)
			c.stopAll()

			for _, id := range ids {
				require.Equal(t, jobs.StatusSucceeded, c.job(id).Status, "job %s", id)
			}
			l := readLedgers(t, c.dir)
			peak, peakKey, runs := overlaps(t, l, killedAt)
			t.Logf("%s: %d jobs over 50 keys, %d kills, %v (%.0f jobs/s); %d runs; at most %d running at once, %d of one key",
				backend, n, kills, took.Round(time.Millisecond), float64(n)/took.Seconds(), runs, peak, peakKey)
			require.LessOrEqual(t, peak, limitedKind.Running, "global limit")
			require.LessOrEqual(t, peakKey, limitedKind.PerKey, "per-key limit")
			// The intervals are within the slots' (claim to outcome), so
			// they need not reach a limit, least of all under the race
			// detector; more runs at once than one key may have shows
			// that the global count was exercised across keys.
			require.Greater(t, peak, limitedKind.PerKey, "runs of several keys overlapped")
			require.Equal(t, limitedKind.PerKey, peakKey, "the heavy users filled their limit at some point")
		})
	}
}

// overlaps builds the run intervals of kindLimited handlers from the
// ledger and returns the most that overlapped at one instant, in all and
// for one key, and the number of runs.
func overlaps(t *testing.T, l *ledger, killedAt map[int]time.Time) (peak, peakKey, runs int) {
	t.Helper()
	type run struct {
		id      uuid.UUID
		attempt int
		pid     int
	}
	type span struct {
		key        string
		start, end time.Time
	}
	spans := map[run]*span{}
	for _, e := range l.entries {
		f := strings.Fields(e.rest)
		if len(f) != 2 || (e.event != "start" && e.event != "done" && e.event != "ctxdone") {
			continue
		}
		k := run{e.id, e.attempt, e.pid}
		s := spans[k]
		if s == nil {
			s = &span{key: f[0]}
			spans[k] = s
		}
		if e.event == "start" {
			s.start = e.at()
		} else {
			s.end = e.at()
		}
	}
	type edge struct {
		at    time.Time
		delta int
		key   string
	}
	var edges []edge
	for k, s := range spans {
		require.False(t, s.start.IsZero(), "run %v ended without a start", k)
		if s.end.IsZero() {
			died, ok := killedAt[k.pid]
			require.True(t, ok, "run %v of a process that was not killed never ended", k)
			s.end = died
			if s.end.Before(s.start) { // started after the kill was sent
				s.end = s.start
			}
		}
		edges = append(edges, edge{s.start, 1, s.key}, edge{s.end, -1, s.key})
	}
	// Ends before starts at the same instant: a slot freed then reused.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	now, perKey := 0, map[string]int{}
	for _, e := range edges {
		now += e.delta
		perKey[e.key] += e.delta
		peak, peakKey = max(peak, now), max(peakKey, perKey[e.key])
	}
	return peak, peakKey, len(spans)
}
