package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrand"
)

// benchBackend opens a fresh repository for a benchmark.
type benchBackend struct {
	name string
	open func(b *testing.B) jobs.JobRepository
}

func benchBackends() []benchBackend {
	return append([]benchBackend{{"memory", func(b *testing.B) jobs.JobRepository {
		m := jobs.NewMemoryRepository()
		b.Cleanup(func() { _ = m.Close() })
		return m
	}}}, append(sqliteBenchBackends(), postgresBenchBackends()...)...)
}

// enqueueN creates n no-op jobs of kind in batches, keeping none in memory.
func enqueueN(b *testing.B, r *jobs.Runner, kind string, n int) {
	b.Helper()
	batch := make([]jobs.EnqueueRequest, min(n, 1000))
	for i := range batch {
		batch[i] = jobs.EnqueueRequest{Kind: kind}
	}
	for n > 0 {
		k := min(n, len(batch))
		if _, err := r.EnqueueMany(context.Background(), batch[:k]...); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

// noopRunner is a runner of 8 workers on repo with n no-op jobs enqueued,
// and the count of jobs its handler has run.
func noopRunner(b *testing.B, repo jobs.JobRepository, n int) (*jobs.Runner, *atomic.Int64) {
	b.Helper()
	r, err := jobs.NewRunner(repo, jobs.WithConcurrency(8))
	if err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	r.Handle("noop", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
		done.Add(1)
		return nil, nil
	})
	enqueueN(b, r, "noop", n)
	return r, &done
}

// drain runs r until done reports n handled jobs, then stops it and
// returns how long it took from Run to Run's return.
func drain(b *testing.B, r *jobs.Runner, done *atomic.Int64, n int64) time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	begin := time.Now()
	go func() { errc <- r.Run(ctx) }()
	for done.Load() < n {
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return time.Since(begin)
}

// BenchmarkDrain measures an end-to-end drain of pre-enqueued no-op jobs:
// claim, run, store the outcome, with the default runner settings and 8
// workers.
func BenchmarkDrain(b *testing.B) {
	const n = 20000
	for _, be := range benchBackends() {
		b.Run(be.name+"/workers=8", func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				repo := be.open(b)
				r, done := noopRunner(b, repo, n)
				b.StartTimer()
				total += drain(b, r, done, n)
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
		})
	}
}

// BenchmarkBareRepositoryLoop is the reference for BenchmarkDrain: one
// goroutine claims 100 jobs and finishes them in one call, with no runner.
func BenchmarkBareRepositoryLoop(b *testing.B) {
	const n = 20000
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				repo := be.open(b)
				r, err := jobs.NewRunner(repo, jobs.WithAllowUnknownKinds())
				if err != nil {
					b.Fatal(err)
				}
				enqueueN(b, r, "noop", n)
				b.StartTimer()
				begin := time.Now()
				bareLoop(b, repo, n)
				total += time.Since(begin)
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
		})
	}
}

func bareLoop(b *testing.B, repo jobs.JobRepository, n int) {
	ctx := context.Background()
	q := jobs.ClaimQuery{Owner: "bare", Kinds: []string{"noop"}, Limit: 100, LeaseDuration: time.Minute}
	cs := make([]jobs.Completion, 0, 100)
	for done := 0; done < n; {
		js, err := repo.Claim(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(js) == 0 {
			b.Fatalf("ran out of jobs after %d", done)
		}
		cs = cs[:0]
		for _, j := range js {
			cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
		}
		if err := repo.Finish(ctx, cs...); err != nil {
			b.Fatal(err)
		}
		done += len(js)
	}
}

// percentiles reports p50 and p99 of ds under the given unit prefix.
func percentiles(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	p := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(p(0.50), name+"-p50-ms")
	b.ReportMetric(p(0.99), name+"-p99-ms")
}

// BenchmarkEnqueueToStart measures the latency from Enqueue to the start of
// the handler with idle workers in the same process.
func BenchmarkEnqueueToStart(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			r, err := jobs.NewRunner(be.open(b))
			if err != nil {
				b.Fatal(err)
			}
			started := make(chan time.Time, 1)
			r.Handle("k", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
				started <- time.Now()
				return nil, nil
			})
			stop := benchRun(b, r)
			defer stop()
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := r.Enqueue(context.Background(), "k", nil); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-started).Sub(t0))
			}
			percentiles(b, "start", lat)
		})
	}
}

// benchRun runs r in the background; the returned func stops it.
func benchRun(b *testing.B, r *jobs.Runner) func() {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkEnqueue measures enqueue throughput, one job per call, from one
// caller and from 16 concurrent callers.
func BenchmarkEnqueue(b *testing.B) {
	const perIter = 2000
	for _, be := range benchBackends() {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/callers=%d", be.name, callers), func(b *testing.B) {
				r, err := jobs.NewRunner(be.open(b), jobs.WithAllowUnknownKinds())
				if err != nil {
					b.Fatal(err)
				}
				var total time.Duration
				for b.Loop() {
					begin := time.Now()
					var wg sync.WaitGroup
					for range callers {
						wg.Go(func() {
							for range perIter / callers {
								if _, err := r.Enqueue(context.Background(), "k", nil); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					total += time.Since(begin)
				}
				b.ReportMetric(float64(perIter*b.N)/total.Seconds(), "jobs/s")
			})
		}
	}
}

// BenchmarkCancelLatency measures the time from Cancel to the handler's
// context being done, with the job running in the same runner ("local") or
// in another runner on the same database ("remote"), and the time from the
// handler's return to Get showing the job canceled.
func BenchmarkCancelLatency(b *testing.B) {
	const refresh = 20 * time.Millisecond // the default of WithRefreshInterval
	for _, be := range benchBackends() {
		for _, mode := range []string{"local", "remote"} {
			b.Run(be.name+"/"+mode, func(b *testing.B) {
				repo := be.open(b)
				worker, err := jobs.NewRunner(repo, jobs.WithRefreshInterval(refresh))
				if err != nil {
					b.Fatal(err)
				}
				running := make(chan struct{}, 1)
				stopped := make(chan [2]time.Time, 1)
				worker.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
					running <- struct{}{}
					<-ctx.Done()
					done := time.Now()
					defer func() { stopped <- [2]time.Time{done, time.Now()} }()
					return nil, ctx.Err()
				})
				defer benchRun(b, worker)()
				canceler := worker
				if mode == "remote" {
					if canceler, err = jobs.NewRunner(repo, jobs.WithAllowUnknownKinds()); err != nil {
						b.Fatal(err)
					}
				}
				var toDone, toVisible []time.Duration
				rng := testrand.New(b)
				for b.Loop() {
					j, err := worker.Enqueue(context.Background(), "k", nil)
					if err != nil {
						b.Fatal(err)
					}
					<-running
					if mode == "remote" {
						// A cancel from elsewhere arrives at a random moment
						// relative to the worker's refresh.
						time.Sleep(time.Duration(rng.Int64N(int64(refresh))))
					}
					t0 := time.Now()
					if _, err := canceler.Cancel(context.Background(), j.ID); err != nil {
						b.Fatal(err)
					}
					ts := <-stopped
					toDone = append(toDone, ts[0].Sub(t0))
					for {
						cur, err := canceler.Get(context.Background(), j.ID)
						if err != nil {
							b.Fatal(err)
						}
						if cur.Status == jobs.StatusCanceled {
							toVisible = append(toVisible, time.Since(ts[1]))
							break
						}
					}
				}
				percentiles(b, "cancel", toDone)
				percentiles(b, "visible", toVisible)
			})
		}
	}
}

// BenchmarkReport measures Report from one handler, and counts the
// repository writes it causes against the bound duration/interval + 2.
func BenchmarkReport(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := newBenchFaultRepo(be.open(b))
			const interval = 250 * time.Millisecond // the default of WithProgressInterval
			r, err := jobs.NewRunner(repo, jobs.WithProgressInterval(interval))
			if err != nil {
				b.Fatal(err)
			}
			reporter := make(chan jobs.Reporter)
			finish := make(chan struct{})
			r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				reporter <- p
				<-finish
				return nil, nil
			})
			defer benchRun(b, r)()
			j, err := r.Enqueue(context.Background(), "k", nil)
			if err != nil {
				b.Fatal(err)
			}
			p := <-reporter
			b.ReportAllocs()
			begin := time.Now()
			i := 0
			for b.Loop() {
				i++
				if err := p.Report(float64(i%1000)/1000, "segment"); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(begin)
			close(finish)
			if _, err := r.Await(context.Background(), j.ID); err != nil {
				b.Fatal(err)
			}
			writes := repo.progressWritesOf(j.ID)
			bound := int(elapsed/interval) + 2
			b.ReportMetric(float64(writes), "writes")
			b.ReportMetric(float64(bound), "write-bound")
			if writes > bound {
				b.Errorf("%d progress writes in %v, over the bound %d", writes, elapsed, bound)
			}
		})
	}
}

func newBenchFaultRepo(r jobs.JobRepository) *faultRepo { return newFaultRepo(r) }

// BenchmarkDrainMemory drains 100 000 jobs and reports the peak resident
// set size of the process. Run it alone for a meaningful figure:
//
//	go test -run '^$' -bench 'DrainMemory/sqlite' -benchtime 1x
func BenchmarkDrainMemory(b *testing.B) {
	const n = 100000
	for _, be := range benchBackends() {
		if be.name == "memory" {
			continue // the memory repository keeps every job by design
		}
		b.Run(be.name, func(b *testing.B) {
			for b.Loop() {
				repo := be.open(b)
				r, done := noopRunner(b, repo, n)
				drain(b, r, done, n)
			}
			b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
		})
	}
}

// peakRSSMB reads the process's peak resident set size (Linux).
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return -1
}
