package jobs_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

var benchPayload = json.RawMessage(`{"file":"talk.mp3","lang":"en"}`)

// BenchmarkMemoryCreate enqueues one job per call.
func BenchmarkMemoryCreate(b *testing.B) {
	repo := jobs.NewMemoryRepository()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := repo.Create(b.Context(), &jobs.Job{Kind: "k", Payload: benchPayload}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkMemoryCreateBatch enqueues 1 000 jobs per call.
func BenchmarkMemoryCreateBatch(b *testing.B) {
	const batch = 1000
	repo := jobs.NewMemoryRepository()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		js := make([]*jobs.Job, batch)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
		}
		if err := repo.Create(b.Context(), js...); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/job")
}

// BenchmarkMemoryClaimFinish claims 100 jobs per call and finishes them in
// one call, from a queue refilled outside the timer.
func BenchmarkMemoryClaimFinish(b *testing.B) {
	const batch = 100
	repo := jobs.NewMemoryRepository()
	refill := func() {
		js := make([]*jobs.Job, 10_000)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
		}
		require.NoError(b, repo.Create(b.Context(), js...))
	}
	refill()
	q := jobs.ClaimQuery{Owner: "bench", Limit: batch, LeaseDuration: time.Minute}
	cs := make([]jobs.Completion, 0, batch)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		got, err := repo.Claim(b.Context(), q)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
			continue
		}
		cs = cs[:0]
		for _, j := range got {
			cs = append(cs, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded, Result: benchPayload})
		}
		if err := repo.Finish(b.Context(), cs...); err != nil {
			b.Fatal(err)
		}
		n += len(got)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkMemoryClaimLargeQueue claims 10 jobs from a queue of 100 000
// pending jobs (plus 100 000 scheduled for later) and releases them again,
// so the queue keeps its size: the cost must not grow with the queue.
func BenchmarkMemoryClaimLargeQueue(b *testing.B) {
	const size = 100_000
	repo := jobs.NewMemoryRepository()
	later := time.Now().Add(time.Hour)
	for range size / 1000 {
		js := make([]*jobs.Job, 2000)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k", Priority: i % 7, Payload: benchPayload}
			if i%2 == 1 {
				js[i].RunAt = later
			}
		}
		require.NoError(b, repo.Create(b.Context(), js...))
	}
	q := jobs.ClaimQuery{Owner: "bench", Limit: 10, LeaseDuration: time.Minute}
	leases := make([]jobs.Lease, 0, 10)
	b.ReportAllocs()
	for b.Loop() {
		got, err := repo.Claim(b.Context(), q)
		if err != nil || len(got) != 10 {
			b.Fatal(len(got), err)
		}
		leases = leases[:0]
		for _, j := range got {
			leases = append(leases, j.Lease())
		}
		if err := repo.Release(b.Context(), leases...); err != nil {
			b.Fatal(err)
		}
	}
}
