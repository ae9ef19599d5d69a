package proctest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
)

// TestSchedulesTickOnceAcrossProcesses runs 4 worker processes that all
// declare the same 200 schedules ticking every second, for 30 seconds,
// while processes are stopped, restarted and killed with SIGKILL (at
// least two always run). Every tick of every schedule must be enqueued at
// most once, whatever the processes racing for it, and the ticks must keep
// coming while processes run. A process that falls behind by several ticks
// (a stall) enqueues one job for the latest of them, by design: such
// collapsed ticks are counted and logged, and a gap longer than
// maxGap fails the test, as does a tick job left pending long before the
// end (the workers fell behind).
func TestSchedulesTickOnceAcrossProcesses(t *testing.T) {
	long(t)
	t.Parallel()
	const schedules = 200
	for _, backend := range backendNames {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, backend, childConfig{Workers: 4, Poll: 100 * time.Millisecond, Schedules: schedules}, "")
			begin := time.Now()
			ps := c.startN(4)
			wait := func(d time.Duration) { time.Sleep(time.Until(begin.Add(d))) }
			wait(8 * time.Second)
			ps[0].stop(t)
			c.start()
			wait(14 * time.Second)
			ps[1].kill(t)
			c.start()
			wait(20 * time.Second)
			ps[2].kill(t)
			wait(22 * time.Second)
			c.start()
			wait(30 * time.Second)
			end := time.Now()
			c.stopAll()

			// Every tick job in the table, by schedule and tick.
			// A tick job still pending long before the stop means the
			// workers fell behind; the last ticks' jobs may be pending (the
			// processes stop claiming when they stop) and a killed
			// process's may be running until its lease runs out.
			seen := map[string]map[int64]int{}
			q := jobs.ListQuery{Kind: kindTick, Limit: 1000}
			total, behind := 0, 0
			const lag = 5 * time.Second
			for {
				page, err := c.repo.List(t.Context(), q)
				require.NoError(t, err)
				for _, j := range page.Jobs {
					var name string
					require.NoError(t, json.Unmarshal(j.Payload, &name))
					if seen[name] == nil {
						seen[name] = map[int64]int{}
					}
					seen[name][j.RunAt.Unix()]++
					total++
					if j.Status == jobs.StatusPending && j.RunAt.Before(end.Add(-lag)) {
						behind++
					}
				}
				if page.Next == "" {
					break
				}
				q.Cursor = page.Next
			}
			require.Len(t, seen, schedules, "every schedule ticked")
			const maxGap = 10 // seconds
			twice, collapsed, gaps := 0, 0, 0
			from, to := begin.Add(3*time.Second).Unix(), end.Add(-2*time.Second).Unix()
			for name, ticks := range seen {
				for at, n := range ticks {
					if n > 1 {
						twice++
						t.Errorf("schedule %s tick %s enqueued %d times", name, time.Unix(at, 0).UTC(), n)
					}
				}
				gap := 0
				for at := from; at <= to; at++ {
					if ticks[at] > 0 {
						gap = 0
						continue
					}
					collapsed++
					if gap++; gap == maxGap+1 {
						gaps++
						t.Errorf("schedule %s: no tick enqueued for %d s up to %s", name, gap, time.Unix(at, 0).UTC())
					}
				}
			}
			t.Logf("%s: %d tick jobs for %d schedules over %v; %d ticks twice, %d collapsed into a later one "+
				"(of %d s checked per schedule), %d gaps over %d s", backend, total, schedules,
				end.Sub(begin).Round(time.Second), twice, collapsed, to-from+1, gaps, maxGap)
			require.Zero(t, twice)
			require.Zero(t, gaps)
			require.Zero(t, behind, "tick jobs due over %v before the stop were still pending", lag)
		})
	}
}
