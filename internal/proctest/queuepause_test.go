package proctest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestPausedQueueAcrossRestart pauses a queue (before any job exists in
// it) from the parent process, enqueues jobs to it, and runs a worker
// process, restarts it (a new process), and checks that the jobs stay
// pending, never started, while jobs of another queue run in both workers.
// The parent then resumes the queue: the worker, another process, starts
// the jobs within its poll interval, or at once on PostgreSQL with its
// listener (the resume sends a notification). Every job then succeeds once.
func TestPausedQueueAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, backend string
		noNotify      bool
		poll, within  time.Duration // the worker's poll interval; the bound on resume → start
	}{
		{"sqlite", "sqlite", true, 2 * time.Second, 3 * time.Second},
		{"postgres", "postgres", false, 30 * time.Second, 2 * time.Second},
		{"postgres-poll", "postgres", true, 2 * time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, tc.backend, childConfig{Workers: 2, Poll: tc.poll, NoNotify: tc.noNotify}, "")
			ctx := t.Context()
			require.NoError(t, c.repo.PauseQueue(ctx, "held"))
			inHeld := func(j *jobs.Job) { j.Queue = "held" }
			held := c.enqueue(5, kindWork, workPayload{MS: 1}, inHeld)

			// markerDone runs a job of another queue to its end in the
			// running worker: it claimed while the held jobs were pending.
			markerDone := func() {
				t.Helper()
				m := c.enqueue(1, kindWork, workPayload{MS: 1}, nil)[0]
				c.waitLedger(tc.poll+10*time.Second, func(l *ledger) bool { return l.count(m, "done") == 1 })
			}
			requireHeld := func() {
				t.Helper()
				l := readLedgers(t, c.dir)
				for _, id := range held {
					j := c.job(id)
					require.Equal(t, jobs.StatusPending, j.Status, "job %s", id)
					require.Zero(t, j.Attempt, "job %s was claimed", id)
					require.Zero(t, l.count(id, "start"), "job %s started", id)
				}
			}
			first := c.start()
			markerDone()
			requireHeld()
			first.stop(t)
			c.start() // the restarted worker: a new process
			markerDone()
			requireHeld()
			s, err := c.repo.Stats(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{"held"}, s.Paused)

			resumed := time.Now()
			require.NoError(t, c.repo.ResumeQueue(ctx, "held"))
			l := c.waitLedger(tc.within+10*time.Second, func(l *ledger) bool {
				for _, id := range held {
					if l.count(id, "done") != 1 {
						return false
					}
				}
				return true
			})
			firstStart, lastStart := startTimes(t, l, held)
			t.Logf("%s: resume → first start %v, last start %v (poll interval %v)", tc.name,
				firstStart.Sub(resumed).Round(time.Millisecond), lastStart.Sub(resumed).Round(time.Millisecond), tc.poll)
			require.LessOrEqual(t, lastStart.Sub(resumed), tc.within, "the resumed jobs start within the bound")
			c.waitFinished(len(held)+2, 10*time.Second) // their outcomes are stored after "done"
			for _, id := range held {
				j := c.job(id)
				require.Equal(t, jobs.StatusSucceeded, j.Status)
				require.Equal(t, 1, j.Attempt)
				require.Equal(t, 1, l.count(id, "start"))
			}
		})
	}
}

// startTimes returns the earliest and the latest wall clock of the "start"
// lines of the jobs.
func startTimes(t *testing.T, l *ledger, ids []uuid.UUID) (first, last time.Time) {
	t.Helper()
	for _, id := range ids {
		for _, e := range l.byJob[id] {
			if e.event != "start" {
				continue
			}
			at := e.at()
			require.False(t, at.IsZero(), "start line without a wall clock")
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
	}
	return first, last
}
