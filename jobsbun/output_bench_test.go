package jobsbun_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
)

// Benchmarks of checkpoints and output. Run them with
//
//	go test -run '^$' -bench 'CheckpointSave|ReadOutput' -benchtime 3s ./jobsbun
//
// (PostgreSQL too when JOBS_TEST_POSTGRES_DSN is set).

// benchRepos are the repositories the benchmarks run on: SQLite with
// synchronous NORMAL (the default) and FULL, and PostgreSQL when configured.
func benchRepos() []struct {
	name string
	open func(b *testing.B) *jobsbun.Repository
} {
	rs := []struct {
		name string
		open func(b *testing.B) *jobsbun.Repository
	}{
		{"sqlite", func(b *testing.B) *jobsbun.Repository { return testrepo.SQLite(b) }},
		{"sqlite-full", func(b *testing.B) *jobsbun.Repository {
			return testrepo.SQLite(b, jobsqlite.WithSynchronous(jobsqlite.Full))
		}},
	}
	if os.Getenv(testdb.PostgresEnv) != "" {
		rs = append(rs, struct {
			name string
			open func(b *testing.B) *jobsbun.Repository
		}{"postgres", func(b *testing.B) *jobsbun.Repository { return testrepo.Postgres(b) }})
	}
	return rs
}

// claimBench creates and claims n jobs for a benchmark.
func claimBench(b *testing.B, repo jobs.JobRepository, n int) []*jobs.Job {
	b.Helper()
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
	}
	if err := repo.Create(b.Context(), js...); err != nil {
		b.Fatal(err)
	}
	var out []*jobs.Job
	for len(out) < n {
		got, err := repo.Claim(b.Context(), jobs.ClaimQuery{Owner: "bench", Limit: min(n-len(out), 1000), LeaseDuration: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// BenchmarkCheckpointSave measures checkpoint saves from 8 concurrent
// savers: each save is one update with a small checkpoint and one output
// item, and each saver sends batch saves (of as many jobs) per
// UpdateProgress call, as a runner's flush carries the saves of all its
// handlers in one call. mode=progress sends the same updates without
// checkpoint or output, for comparison. It reports saves/s and items/s
// over the wall time of all savers.
func BenchmarkCheckpointSave(b *testing.B) {
	const savers = 8
	for _, be := range benchRepos() {
		for _, mode := range []string{"checkpoint", "progress"} {
			for _, batch := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/savers=%d/batch=%d", be.name, mode, savers, batch), func(b *testing.B) {
					repo := be.open(b)
					claimed := claimBench(b, repo, savers*batch)
					calls := make(chan struct{}, savers)
					var (
						saves atomic.Int64
						wg    sync.WaitGroup
						fail  atomic.Pointer[error]
					)
					for s := range savers {
						mine := claimed[s*batch : (s+1)*batch]
						wg.Go(func() {
							ups := make([]jobs.ProgressUpdate, len(mine))
							k := 0
							for range calls {
								k++
								for i, j := range mine {
									ups[i] = jobs.ProgressUpdate{Lease: j.Lease(), Progress: jobs.Progress{Fraction: 0.5, Message: "working"}}
									if mode == "checkpoint" {
										ups[i].Checkpoint = fmt.Appendf(nil, `{"offset":%d}`, k)
										ups[i].Output = []json.RawMessage{fmt.Appendf(nil, `{"line":%d,"text":"a line of output"}`, k)}
									}
								}
								if err := repo.UpdateProgress(b.Context(), time.Hour, ups...); err != nil {
									fail.CompareAndSwap(nil, &err)
									continue
								}
								saves.Add(int64(len(ups)))
							}
						})
					}
					b.ReportAllocs()
					start := time.Now()
					for b.Loop() {
						calls <- struct{}{}
					}
					close(calls)
					wg.Wait()
					elapsed := time.Since(start)
					if err := fail.Load(); err != nil {
						b.Fatal(*err)
					}
					b.ReportMetric(float64(saves.Load())/elapsed.Seconds(), "saves/s")
					if mode == "checkpoint" {
						b.ReportMetric(float64(saves.Load())/elapsed.Seconds(), "items/s")
					}
				})
			}
		}
	}
}

// BenchmarkReadOutput measures the replay of a job's output of 10 000
// items (about 60 bytes each) from the start, in pages of 1000 (the most
// ReadOutput returns): ms/replay should stay under 50.
func BenchmarkReadOutput(b *testing.B) {
	const n = 10_000
	for _, be := range benchRepos() {
		if be.name == "sqlite-full" {
			continue // reads do not depend on the durability of commits
		}
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			j := claimBench(b, repo, 1)[0]
			for lo := 0; lo < n; lo += 1000 {
				out := make([]json.RawMessage, 1000)
				for i := range out {
					out[i] = fmt.Appendf(nil, `{"line":%d,"text":"a line of output of a long job"}`, lo+i)
				}
				if err := repo.UpdateProgress(b.Context(), time.Hour, jobs.ProgressUpdate{Lease: j.Lease(),
					Checkpoint: json.RawMessage(`{}`), Output: out}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			reps := 0
			for b.Loop() {
				reps++
				var after int64
				for {
					page, err := repo.ReadOutput(b.Context(), j.ID, after, 1000)
					if err != nil {
						b.Fatal(err)
					}
					if len(page) > 0 {
						after = page[len(page)-1].Seq
					}
					if len(page) < 1000 {
						break
					}
				}
				if after != n {
					b.Fatalf("replayed %d items, want %d", after, n)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(reps), "ms/replay")
		})
	}
}
