package proctest

import (
	"fmt"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
)

// BenchmarkDrainProcesses measures an end-to-end drain of 20 000 no-op jobs
// by four worker processes on one PostgreSQL database (each job also writes
// its two ledger lines). The jobs are enqueued with a RunAt a few seconds
// ahead, so that every process starts on a full queue; the drain lasts
// from that RunAt to the last FinishedAt:
//
//	JOBS_LONG_TESTS=1 go test -run '^$' -bench DrainProcesses -benchtime 3x ./internal/proctest
func BenchmarkDrainProcesses(b *testing.B) {
	long(b)
	const n = 20000
	for _, workers := range []int{2, 8} {
		b.Run(fmt.Sprintf("postgres/procs=4/workers=%d", workers), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				c := newCluster(b, "postgres", childConfig{Workers: workers, Lease: 10 * time.Second,
					Poll: 10 * time.Millisecond}, "")
				c.startN(4)
				runAt := time.Now().Add(3 * time.Second)
				c.enqueue(n, kindNoop, nil, func(j *jobs.Job) { j.RunAt = runAt })
				if time.Now().After(runAt) {
					b.Fatal("enqueue took longer than the head start")
				}
				c.waitFinished(n, 2*time.Minute)
				var last time.Time
				if err := c.repo.DB().QueryRowContext(b.Context(), "SELECT max(finished_at) FROM jobs").Scan(&last); err != nil {
					b.Fatal(err)
				}
				total += last.Sub(runAt)
				c.stopAll()
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
		})
	}
}
