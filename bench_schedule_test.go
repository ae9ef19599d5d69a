package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
)

// BenchmarkIdleSchedules measures what 1,000 declared schedules that are
// not due cost a process on SQLite: the CPU time of the whole process
// (runner included) per second of wall time, as a percentage of one core,
// next to the same runner with no schedule. Each iteration is 100 ms idle.
func BenchmarkIdleSchedules(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("schedules=%d", n), func(b *testing.B) {
			repo := sqliteBenchBackends()[0].open(b)
			r, err := jobs.NewRunner(repo)
			if err != nil {
				b.Fatal(err)
			}
			r.Handle("k", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) { return nil, nil })
			for i := range n {
				if err := r.Schedule(fmt.Sprintf("s%04d", i), jobs.Schedule{Spec: "0 3 * * *", Kind: "k"}); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			for { // declared: every schedule's row is written
				list, err := r.Schedules(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(list) == n {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			b.ResetTimer()
			cpu0, t0 := processCPU(), time.Now()
			for b.Loop() {
				time.Sleep(100 * time.Millisecond)
			}
			cpu, wall := processCPU()-cpu0, time.Since(t0)
			b.StopTimer()
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
