package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
)

// BenchmarkDrainLimits compares end-to-end drains on 8 workers, in one
// run: without limits, with a per-key limit of 2 on every job (1 000 keys),
// and with a global running limit of the kind. Compare the jobs/s of the
// sub-benchmarks of one backend and one work size with each other.
//
// The no-op drains (20 000 jobs) measure what a limit costs the claim. A
// limit smaller than the jobs a runner keeps claimed (8 workers claim up to
// 264 no-op jobs at a time) binds: every slot then waits for its job's
// outcome to be stored and for the next claim to see the slot free, so
// such a drain tops out at the limit divided by those two round trips,
// whatever the handler does. The work=5ms drains (2 000 jobs that each
// take 5 ms) are the setting of river#1145: a global limit equal to the
// workers, on jobs that do some work.
//
//	go test -run '^$' -bench 'DrainLimits' -benchtime 3x .
func BenchmarkDrainLimits(b *testing.B) {
	const work = 5 * time.Millisecond
	cases := []struct {
		name  string
		limit jobs.Limit
		keys  int
		work  time.Duration // each job's run time
	}{
		{"none", jobs.Limit{}, 1000, 0},
		{"perkey=2,keys=1000", jobs.Limit{PerKey: 2}, 1000, 0},
		{"running=8", jobs.Limit{Running: 8}, 0, 0},
		{"running=64", jobs.Limit{Running: 64}, 0, 0},
		{"running=1024", jobs.Limit{Running: 1024}, 0, 0},
		{"work=5ms/none", jobs.Limit{}, 0, work},
		{"work=5ms/running=8", jobs.Limit{Running: 8}, 0, work},
	}
	for _, be := range benchBackends() {
		for _, c := range cases {
			b.Run(be.name+"/"+c.name, func(b *testing.B) {
				n := 20000
				if c.work > 0 {
					n = 2000
				}
				var total time.Duration
				for b.Loop() {
					b.StopTimer()
					r, done := limitedRunner(b, be.open(b), c.limit, c.keys, n, c.work)
					b.StartTimer()
					total += drain(b, r, done, int64(n))
				}
				b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
			})
		}
	}
}

// limitedRunner is noopRunner with the kind limited by l, the jobs spread
// over keys concurrency keys (0: none), and a handler that takes work.
func limitedRunner(b *testing.B, repo jobs.JobRepository, l jobs.Limit, keys, n int, work time.Duration) (*jobs.Runner, *atomic.Int64) {
	b.Helper()
	r, err := jobs.NewRunner(repo, jobs.WithConcurrency(8))
	if err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	r.Handle("noop", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
		if work > 0 {
			time.Sleep(work) // stands for the handler's work
		}
		done.Add(1)
		return nil, nil
	}, jobs.WithLimit(l))
	batch := make([]jobs.EnqueueRequest, 0, 1000)
	for i := range n {
		req := jobs.EnqueueRequest{Kind: "noop"}
		if keys > 0 {
			req.Options = []jobs.EnqueueOption{jobs.WithConcurrencyKey(fmt.Sprintf("user-%d", i%keys))}
		}
		batch = append(batch, req)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := r.EnqueueMany(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return r, &done
}

// BenchmarkPickupLoneKey measures how long the job of a lone key waits to
// start while another key has 10 000 jobs queued behind its 2 running
// ones (per-key limit 2), in one process: from Enqueue to the handler.
//
//	go test -run '^$' -bench 'PickupLoneKey' .
func BenchmarkPickupLoneKey(b *testing.B) {
	const backlog = 10000
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			cc := &claimCounter{JobRepository: be.open(b)}
			r, err := jobs.NewRunner(cc, jobs.WithConcurrency(8))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { b.ReportMetric(float64(cc.claims.Load())/float64(b.N), "claims/op") }()
			started := make(chan time.Time, 1)
			hold := make(chan struct{})
			r.Handle("k", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
				if j.ConcurrencyKey == "big" {
					select { // the big key's jobs hold their slots
					case <-hold:
					case <-ctx.Done():
					}
					return nil, nil
				}
				started <- time.Now()
				return nil, nil
			}, jobs.WithLimit(jobs.Limit{PerKey: 2}))
			batch := make([]jobs.EnqueueRequest, 1000)
			for i := range batch {
				batch[i] = jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithConcurrencyKey("big")}}
			}
			for range backlog / len(batch) {
				if _, err := r.EnqueueMany(context.Background(), batch...); err != nil {
					b.Fatal(err)
				}
			}
			stop := benchRun(b, r)
			defer func() { close(hold); stop() }()
			var lat []time.Duration
			i := 0
			for b.Loop() {
				t0 := time.Now()
				if _, err := r.Enqueue(context.Background(), "k", nil, jobs.WithConcurrencyKey(fmt.Sprintf("lone-%d", i))); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-started).Sub(t0))
				i++
			}
			percentiles(b, "start", lat)
		})
	}
}

// BenchmarkClaimPastDelayed measures one claim of a due job while 10 000
// jobs wait for a later RunAt (scheduled jobs, retries in backoff): a
// job's fair rank is given at creation, so the delayed jobs sit ahead in
// the claim index and the claim steps over them.
//
//	go test -run '^$' -bench 'ClaimPastDelayed' .
func BenchmarkClaimPastDelayed(b *testing.B) {
	for _, delayed := range []int{0, 10000} {
		for _, be := range benchBackends() {
			b.Run(fmt.Sprintf("%s/delayed=%d", be.name, delayed), func(b *testing.B) {
				repo := be.open(b)
				ctx := context.Background()
				later := time.Now().Add(time.Hour)
				for lo := 0; lo < delayed; lo += 1000 {
					js := make([]*jobs.Job, 1000)
					for i := range js {
						js[i] = &jobs.Job{Kind: "k", RunAt: later}
					}
					if err := repo.Create(ctx, js...); err != nil {
						b.Fatal(err)
					}
				}
				q := jobs.ClaimQuery{Owner: "o", Kinds: []string{"k"}, Limit: 10, LeaseDuration: time.Minute}
				for b.Loop() {
					b.StopTimer()
					if err := repo.Create(ctx, &jobs.Job{Kind: "k"}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					js, err := repo.Claim(ctx, q)
					if err != nil || len(js) != 1 {
						b.Fatal(len(js), err)
					}
				}
			})
		}
	}
}
