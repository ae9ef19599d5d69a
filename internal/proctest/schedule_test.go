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
// least two always run). Every tick of every schedule must be enqueued
// exactly once: none twice, whatever the processes racing for it, and
// none missed while a process ran.
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
			seen := map[string]map[int64]int{}
			q := jobs.ListQuery{Kind: kindTick, Limit: 1000}
			total := 0
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
				}
				if page.Next == "" {
					break
				}
				q.Cursor = page.Next
			}
			require.Len(t, seen, schedules, "every schedule ticked")
			twice, missed := 0, 0
			from, to := begin.Add(3*time.Second).Unix(), end.Add(-2*time.Second).Unix()
			for name, ticks := range seen {
				for at, n := range ticks {
					if n > 1 {
						twice++
						t.Errorf("schedule %s tick %s enqueued %d times", name, time.Unix(at, 0).UTC(), n)
					}
				}
				for at := from; at <= to; at++ {
					if ticks[at] == 0 {
						missed++
						if missed <= 10 {
							t.Errorf("schedule %s tick %s never enqueued", name, time.Unix(at, 0).UTC())
						}
					}
				}
			}
			t.Logf("%s: %d tick jobs for %d schedules over %v; %d ticks twice, %d missed (checked %d s per schedule)",
				backend, total, schedules, end.Sub(begin).Round(time.Second), twice, missed, to-from+1)
			require.Zero(t, twice)
			require.Zero(t, missed)
			c.waitFinished(total, 30*time.Second)
		})
	}
}
