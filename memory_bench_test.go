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
	repo, err := jobs.NewMemoryRepository()
	require.NoError(b, err)
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
	repo, err := jobs.NewMemoryRepository()
	require.NoError(b, err)
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
	repo, err := jobs.NewMemoryRepository()
	require.NoError(b, err)
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
