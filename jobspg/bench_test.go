package jobspg_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
)

// BenchmarkCrossRunnerCancel measures the time from Cancel in one runner to
// the handler's context being done in another runner on the same schema,
// each with its own connection pool and listener (as two processes would
// be; the clock is shared, so both ends are timed exactly):
//
//	go test -run '^$' -bench CrossRunnerCancel -benchtime 500x ./jobspg
//
// request-p50-ms is the Cancel call alone (one UPDATE and its COMMIT,
// which waits for the WAL flush), the floor of both modes.
//
// "notify": the worker's refresh interval is an hour, so only LISTEN/NOTIFY
// can deliver the cancel. "poll": no listener, the default refresh interval
// (and a 5 ms job poll, so that iterations do not wait for the claim).
func BenchmarkCrossRunnerCancel(b *testing.B) {
	for _, mode := range []string{"notify", "poll"} {
		b.Run(mode, func(b *testing.B) {
			dsn := testdb.PostgresDSN(b)
			a := newNode(b, dsn)
			var worker *node
			if mode == "notify" {
				worker = newNode(b, dsn)
			} else {
				worker = &node{repo: openPG(b, dsn)}
				r, err := jobs.NewRunner(worker.repo, jobs.WithShutdown(time.Nanosecond, 0), jobs.WithPollInterval(5*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				worker.r = r
			}
			started := make(chan struct{}, 1)
			stopped := make(chan time.Time, 1)
			worker.r.Handle("block", func(ctx context.Context, _ *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
				started <- struct{}{}
				<-ctx.Done()
				stopped <- time.Now()
				return nil, ctx.Err()
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- worker.r.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			if worker.l != nil {
				for !worker.l.Connected() {
					time.Sleep(time.Millisecond)
				}
			}
			var lat, req []time.Duration
			for b.Loop() {
				j, err := a.r.Enqueue(context.Background(), "block", nil)
				if err != nil {
					b.Fatal(err)
				}
				<-started
				t0 := time.Now()
				if _, err := a.r.Cancel(context.Background(), j.ID); err != nil {
					b.Fatal(err)
				}
				req = append(req, time.Since(t0))
				lat = append(lat, (<-stopped).Sub(t0))
			}
			ms := func(ds []time.Duration, q float64) float64 {
				return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond)
			}
			slices.Sort(lat)
			slices.Sort(req)
			b.ReportMetric(ms(lat, 0.5), "cancel-p50-ms")
			b.ReportMetric(ms(lat, 0.99), "cancel-p99-ms")
			b.ReportMetric(ms(lat, 1), "cancel-max-ms")
			// The Cancel call itself (its UPDATE and COMMIT), for reference:
			// the NOTIFY path adds the rest.
			b.ReportMetric(ms(req, 0.5), "request-p50-ms")
		})
	}
}
