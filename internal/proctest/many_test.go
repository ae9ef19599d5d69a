package proctest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestManyProcessesNoCrash runs several worker processes on one database
// with no faults (CC-1, CC-2): every no-op job is done exactly once, none
// is lost, and no busy error (SQLITE_BUSY) reaches a runner.
func TestManyProcessesNoCrash(t *testing.T) {
	long(t)
	t.Parallel()
	for _, tc := range []struct {
		backend        string
		procs, workers int
		jobs           int
	}{
		{"sqlite", 4, 4, 20000},
		{"postgres", 4, 8, 50000},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, tc.backend, childConfig{Workers: tc.workers, Lease: 5 * time.Second,
				Poll: 50 * time.Millisecond}, "")
			c.startN(tc.procs)
			began := time.Now()
			ids := c.enqueue(tc.jobs, kindNoop, nil, nil)
			enqueued := time.Since(began)
			c.waitFinished(tc.jobs, 5*time.Minute)
			took := time.Since(began)
			c.stopAll()
			l := readLedgers(t, c.dir)
			checkNoBusyErrors(t, l)
			checkExactlyOnce(t, l, ids)
			checkAttemptsWithinLimit(t, c)
			shares := ""
			for pid, n := range l.donesByPid() {
				shares += fmt.Sprintf(" %d:%d", pid, n)
			}
			t.Logf("%s: %d processes × %d workers: %d jobs enqueued (batches of 1000, while the workers ran) "+
				"and drained in %v from the first enqueue (%.0f jobs/s; enqueue alone %v); done per process:%s",
				tc.backend, tc.procs, tc.workers, tc.jobs, took.Round(time.Millisecond),
				float64(tc.jobs)/took.Seconds(), enqueued.Round(time.Millisecond), shares)
			if tc.backend == "sqlite" {
				var res string
				require.NoError(t, c.repo.DB().QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&res))
				require.Equal(t, "ok", res)
			}
		})
	}
}
