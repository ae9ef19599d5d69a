package jobs_test

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// Storage benchmarks: the repository alone, without a runner, on each
// backend (SQLite in a temp file, WAL, synchronous NORMAL and FULL; memory;
// PostgreSQL when JOBS_TEST_POSTGRES_DSN is set). Run them with
//
//	go test -run '^$' -bench 'BenchmarkRepo' -benchtime 3s .

// repoBenchBackends are the repositories the storage benchmarks run on.
func repoBenchBackends() []benchBackend {
	bs := []benchBackend{
		{"sqlite", func(b *testing.B) jobs.JobRepository { return testrepo.SQLite(b) }},
		{"sqlite-full", func(b *testing.B) jobs.JobRepository {
			return testrepo.SQLite(b, jobsqlite.WithSynchronous(jobsqlite.Full))
		}},
		{"memory", func(b *testing.B) jobs.JobRepository {
			m := jobs.NewMemoryRepository()
			b.Cleanup(func() { _ = m.Close() })
			return m
		}},
	}
	if os.Getenv(testdb.PostgresEnv) != "" {
		bs = append(bs, benchBackend{"postgres", func(b *testing.B) jobs.JobRepository {
			return testrepo.Postgres(b, jobspg.WithMaxOpenConns(8))
		}})
	}
	return bs
}

// BenchmarkRepoCreate enqueues one job per call from one caller.
func BenchmarkRepoCreate(b *testing.B) {
	for _, be := range repoBenchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			b.ReportAllocs()
			allocs, cpu := startAllocs(), processCPU()
			n := 0
			for b.Loop() {
				if err := repo.Create(b.Context(), &jobs.Job{Kind: "k", Payload: benchPayload}); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
			b.ReportMetric(allocs.perJob(n), "allocs/job")
			reportCPU(b, cpu, n)
		})
	}
}

// BenchmarkRepoCreateBatch enqueues 1 000 jobs per call.
func BenchmarkRepoCreateBatch(b *testing.B) {
	const batch = 1000
	for _, be := range repoBenchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			js := make([]*jobs.Job, batch)
			b.ReportAllocs()
			allocs, cpu := startAllocs(), processCPU()
			n := 0
			for b.Loop() {
				for i := range js {
					js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
				}
				if err := repo.Create(b.Context(), js...); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
			b.ReportMetric(allocs.perJob(n), "allocs/job")
			reportCPU(b, cpu, n)
		})
	}
}

// BenchmarkRepoClaimFinish claims 100 jobs per call and finishes them in one
// Finish call (the group commit of a runner's completer), from a queue
// refilled outside the timer.
func BenchmarkRepoClaimFinish(b *testing.B) {
	const batch = 100
	for _, be := range repoBenchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			refill := func() {
				js := make([]*jobs.Job, 10_000)
				for i := range js {
					js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
				}
				if err := repo.Create(b.Context(), js...); err != nil {
					b.Fatal(err)
				}
			}
			refill()
			q := jobs.ClaimQuery{Owner: "bench", Kinds: []string{"k"}, Limit: batch, LeaseDuration: time.Minute}
			cs := make([]jobs.Completion, 0, batch)
			b.ReportAllocs()
			allocs, cpu := startAllocs(), processCPU()
			n := 0
			for b.Loop() {
				got, err := repo.Claim(b.Context(), q)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) == 0 {
					b.StopTimer()
					c, a := processCPU(), startAllocs()
					refill()
					// Refills are not the measured work.
					cpu += processCPU() - c
					allocs += startAllocs() - a
					b.StartTimer()
					continue
				}
				cs = cs[:0]
				for _, j := range got {
					cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded})
				}
				if err := repo.Finish(b.Context(), cs...); err != nil {
					b.Fatal(err)
				}
				n += len(got)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
			b.ReportMetric(allocs.perJob(n), "allocs/job")
			reportCPU(b, cpu, n)
		})
	}
}

// allocCounter counts heap allocations from its start, to report them per
// job (allocs/op is per call, and calls handle many jobs).
type allocCounter uint64

func startAllocs() allocCounter {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return allocCounter(m.Mallocs)
}

func (c allocCounter) perJob(n int) float64 {
	if n == 0 {
		return 0
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.Mallocs-uint64(c)) / float64(n)
}

// reportCPU reports jobs per CPU-second of the whole process since start.
func reportCPU(b *testing.B, start time.Duration, n int) {
	if used := processCPU() - start; used > 0 && n > 0 {
		b.ReportMetric(float64(n)/used.Seconds(), "jobs/cpu-s")
	}
}

// BenchmarkSQLiteReadsDuringWrites measures Get from 8 readers while one
// writer claims and finishes batches, with pools of 1, 2 and 4 connections:
// writes are serialised by the repository, so extra connections only serve
// readers beside the writer (WAL). It reports reads/s and jobs/s.
func BenchmarkSQLiteReadsDuringWrites(b *testing.B) {
	for _, conns := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			repo := testrepo.SQLite(b, jobsqlite.WithMaxOpenConns(conns))
			ctx := b.Context()
			js := make([]*jobs.Job, 20_000)
			for i := range js {
				js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
			}
			if err := repo.Create(ctx, js...); err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var written atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				q := jobs.ClaimQuery{Owner: "w", Limit: 100, LeaseDuration: time.Minute}
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := repo.Claim(ctx, q)
					if err != nil || len(got) == 0 {
						return
					}
					cs := make([]jobs.Completion, len(got))
					for i, j := range got {
						cs[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}
					}
					if err := repo.Finish(ctx, cs...); err != nil {
						return
					}
					written.Add(int64(len(got)))
				}
			})
			var reads atomic.Int64
			b.SetParallelism(4) // 8 readers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := repo.Get(ctx, js[i%len(js)].ID); err != nil {
						b.Error(err)
						return
					}
					reads.Add(1)
					i += 7919
				}
			})
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(reads.Load())/b.Elapsed().Seconds(), "reads/s")
			b.ReportMetric(float64(written.Load())/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
