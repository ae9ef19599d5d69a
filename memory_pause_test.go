package jobs_test

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// BenchmarkMemoryClaimBesidePausedBacklog claims 10 jobs of one queue and
// releases them again, beside a paused queue of 100 000 pending jobs that
// come first in line: the memory repository skips the paused queue's
// buckets whole, so the cost is that of BenchmarkMemoryClaimLargeQueue,
// whatever the paused backlog (the SQL repositories read past it; see
// jobsbun's schema_queues.go).
func BenchmarkMemoryClaimBesidePausedBacklog(b *testing.B) {
	repo := jobs.NewMemoryRepository()
	ctx := b.Context()
	for range 100 {
		js := make([]*jobs.Job, 1000)
		for i := range js {
			js[i] = &jobs.Job{Kind: "k", Queue: "paused", Priority: 1, Payload: benchPayload}
		}
		require.NoError(b, repo.Create(ctx, js...))
	}
	js := make([]*jobs.Job, 1000)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
	}
	require.NoError(b, repo.Create(ctx, js...))
	require.NoError(b, repo.PauseQueue(ctx, "paused"))
	q := jobs.ClaimQuery{Owner: "bench", Limit: 10, LeaseDuration: time.Minute}
	leases := make([]jobs.Lease, 0, 10)
	b.ReportAllocs()
	for b.Loop() {
		got, err := repo.Claim(ctx, q)
		if err != nil || len(got) != 10 {
			b.Fatal(len(got), err)
		}
		leases = leases[:0]
		for _, j := range got {
			if j.Queue == "paused" {
				b.Fatal("claimed a job of the paused queue")
			}
			leases = append(leases, j.Lease())
		}
		if err := repo.Release(ctx, leases...); err != nil {
			b.Fatal(err)
		}
	}
}
