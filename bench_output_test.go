package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// BenchmarkCheckpoint measures Reporter.Checkpoint through a running
// runner: 8 handlers at once, each saving b.N/8 small checkpoints, each with
// 1 or 10 output items appended before it (saves from many handlers share a
// write). It reports saves/s and output items/s.
func BenchmarkCheckpoint(b *testing.B) {
	const handlers = 8
	for _, be := range benchBackends() {
		for _, per := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/items=%d", be.name, per), func(b *testing.B) {
				repo := be.open(b)
				r, err := jobs.NewRunner(repo, jobs.WithConcurrency(handlers))
				if err != nil {
					b.Fatal(err)
				}
				saves := max(1, b.N/handlers)
				var wg sync.WaitGroup
				wg.Add(handlers)
				jobs.Handle(r, "c", func(ctx context.Context, j *jobs.Job, _ struct{}, p jobs.Reporter) (int, error) {
					defer wg.Done()
					for i := range saves {
						for k := range per {
							if err := p.Append(i*per + k); err != nil {
								return 0, err
							}
						}
						if err := p.Checkpoint(ctx, i+1); err != nil {
							return 0, err
						}
					}
					return saves, nil
				})
				ctx, stop := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- r.Run(ctx) }()
				b.ResetTimer()
				start := time.Now()
				for range handlers {
					if _, err := r.Enqueue(ctx, "c", struct{}{}); err != nil {
						b.Fatal(err)
					}
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				stop()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(saves*handlers)/elapsed.Seconds(), "saves/s")
				b.ReportMetric(float64(saves*handlers*per)/elapsed.Seconds(), "items/s")
			})
		}
	}
}

// BenchmarkOutputReplay reads a stored output of 10,000 items from the
// start with Runner.Output, as a client that reconnects would.
func BenchmarkOutputReplay(b *testing.B) {
	const items = 10000
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			r, err := jobs.NewRunner(repo)
			if err != nil {
				b.Fatal(err)
			}
			jobs.Handle(r, "o", func(ctx context.Context, j *jobs.Job, _ struct{}, p jobs.Reporter) (int, error) {
				for i := range items {
					if err := p.Append(map[string]any{"seg": i, "text": "a line of transcript of some length"}); err != nil {
						return 0, err
					}
					if i%1000 == 999 {
						if err := p.Checkpoint(ctx, i+1); err != nil {
							return 0, err
						}
					}
				}
				return items, nil
			})
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- r.Run(ctx) }()
			j, err := r.Enqueue(ctx, "o", struct{}{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Await(ctx, j.ID); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				n := 0
				for _, err := range r.Output(ctx, j.ID, 0) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != items {
					b.Fatalf("replayed %d items, want %d", n, items)
				}
			}
			b.StopTimer()
			stop()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkOutputFollow measures the time from a checkpoint returning in a
// worker runner to a follower in another runner (over a repository of its
// own, as another process would have; with a LISTEN/NOTIFY Listener on
// PostgreSQL) receiving the item.
func BenchmarkOutputFollow(b *testing.B) {
	type pair struct {
		name string
		open func(b *testing.B) (worker, follower *jobsbun.Repository)
	}
	pairs := []pair{{"sqlite", func(b *testing.B) (*jobsbun.Repository, *jobsbun.Repository) {
		path := testdb.SQLitePath(b)
		return openSQLitePath(b, path), openSQLitePath(b, path)
	}}}
	if os.Getenv(testdb.PostgresEnv) != "" {
		pairs = append(pairs, pair{"postgres", func(b *testing.B) (*jobsbun.Repository, *jobsbun.Repository) {
			dsn := testdb.PostgresDSN(b)
			return openPostgresDSN(b, dsn), openPostgresDSN(b, dsn)
		}})
	}
	for _, be := range pairs {
		b.Run(be.name, func(b *testing.B) {
			repo, follower := be.open(b)
			var opts []jobs.Option
			if be.name == "postgres" {
				opts = append(opts, jobs.WithNotifier(jobspg.NewListener(follower.DB())))
			}
			worker, err := jobs.NewRunner(repo)
			if err != nil {
				b.Fatal(err)
			}
			reader, err := jobs.NewRunner(follower, opts...)
			if err != nil {
				b.Fatal(err)
			}
			sent := make(chan time.Time, 1)
			next := make(chan struct{})
			n := b.N
			jobs.Handle(worker, "f", func(ctx context.Context, j *jobs.Job, _ struct{}, p jobs.Reporter) (int, error) {
				for i := range n {
					<-next
					if err := p.Append(i); err != nil {
						return 0, err
					}
					if err := p.Checkpoint(ctx, i+1); err != nil {
						return 0, err
					}
					sent <- time.Now()
				}
				return n, nil
			})
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 2)
			go func() { done <- worker.Run(ctx) }()
			go func() { done <- reader.Run(ctx) }()
			j, err := worker.Enqueue(ctx, "f", struct{}{})
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, n)
			b.ResetTimer()
			next <- struct{}{}
			for it, err := range reader.Output(ctx, j.ID, 0) {
				if err != nil {
					b.Fatal(err)
				}
				at := <-sent
				lat = append(lat, time.Since(at))
				var v int
				_ = json.Unmarshal(it.Data, &v)
				if v+1 < n {
					next <- struct{}{}
				}
			}
			b.StopTimer()
			stop()
			<-done
			<-done
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "follow-p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "follow-p99-ms")
		})
	}
}

// openSQLitePath opens a repository on the SQLite file at path, closed when
// the benchmark ends.
func openSQLitePath(b *testing.B, path string) *jobsbun.Repository {
	repo, err := jobsqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = repo.Close() })
	return repo
}

// openPostgresDSN opens a repository on the PostgreSQL database at dsn,
// closed when the benchmark ends.
func openPostgresDSN(b *testing.B, dsn string) *jobsbun.Repository {
	repo, err := jobspg.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = repo.Close() })
	return repo
}
