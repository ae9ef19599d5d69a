package proctest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobspg"
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

// BenchmarkCrossProcessCancel measures the time from Cancel in this process
// to the handler's context being done in a worker process on PostgreSQL
// (both read the host's wall clock; the worker writes the moment to its
// ledger). "notify": the worker's refresh interval is a minute, so only
// LISTEN/NOTIFY can deliver the cancel in time; "poll": no listener, the
// default refresh interval.
//
//	JOBS_LONG_TESTS=1 go test -run '^$' -bench CrossProcessCancel -benchtime 200x ./internal/proctest
func BenchmarkCrossProcessCancel(b *testing.B) {
	long(b)
	for _, mode := range []string{"notify", "poll"} {
		b.Run(mode, func(b *testing.B) {
			cfg := childConfig{Workers: 2, Lease: time.Minute, Poll: 5 * time.Millisecond}
			if mode == "notify" {
				cfg.Refresh = time.Minute
			} else {
				cfg.NoNotify = true
			}
			c := newCluster(b, "postgres", cfg, "")
			c.start()
			// The coordinator awaits each canceled job through its own
			// listener, so that it reads the ledger only afterwards and
			// takes no CPU from the worker while the cancel travels.
			r, err := jobs.NewRunner(c.repo, jobs.WithAllowUnknownKinds(),
				jobs.WithNotifier(jobspg.NewListener(c.repo.DB())))
			if err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			for b.Loop() {
				id := c.enqueue(1, kindWait, nil, nil)[0]
				c.waitLedger(10*time.Second, func(l *ledger) bool { return l.count(id, "start") == 1 })
				t0 := time.Now()
				if _, err := r.Cancel(b.Context(), id); err != nil {
					b.Fatal(err)
				}
				if _, err := r.Await(b.Context(), id); err != nil {
					b.Fatal(err)
				}
				l := readLedgers(b, c.dir)
				for _, e := range l.byJob[id] {
					if e.event == "ctxdone" {
						var code string
						var at int64
						if _, err := fmt.Sscan(e.rest, &code, &at); err != nil || code != string(jobs.ErrCanceled) {
							b.Fatalf("ctxdone %q", e.rest)
						}
						lat = append(lat, time.Unix(0, at).Sub(t0))
					}
				}
			}
			slices.Sort(lat)
			ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
			b.ReportMetric(ms(0.5), "cancel-p50-ms")
			b.ReportMetric(ms(0.99), "cancel-p99-ms")
			b.ReportMetric(ms(1), "cancel-max-ms")
		})
	}
}
