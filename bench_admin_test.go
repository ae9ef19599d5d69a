package jobs_test

import (
	"testing"

	"github.com/jobsmith/jobs"
)

// BenchmarkRepoCreateBatchMetadata enqueues 1 000 jobs per call, each with
// two metadata entries: compare with BenchmarkRepoCreateBatch, whose jobs
// have none (on SQLite, jobs with metadata leave the prepared insert
// statements for the general multi-row INSERT).
func BenchmarkRepoCreateBatchMetadata(b *testing.B) {
	const batch = 1000
	meta := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "request_id": "r-12345"}
	for _, be := range repoBenchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			js := make([]*jobs.Job, batch)
			n := 0
			for b.Loop() {
				for i := range js {
					js[i] = &jobs.Job{Kind: "k", Payload: benchPayload, Metadata: meta}
				}
				if err := repo.Create(b.Context(), js...); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkRepoAdminBatch cancels, retries and deletes 1 000 jobs per call
// (batches of the largest limit), the cost of one step of an operator's
// sweep over a large table.
func BenchmarkRepoAdminBatch(b *testing.B) {
	const batch = 1000
	for _, be := range repoBenchBackends() {
		b.Run(be.name, func(b *testing.B) {
			repo := be.open(b)
			ctx := b.Context()
			q := jobs.ListQuery{Limit: batch}
			n := 0
			for b.Loop() {
				b.StopTimer()
				js := make([]*jobs.Job, batch)
				for i := range js {
					js[i] = &jobs.Job{Kind: "k", Payload: benchPayload}
				}
				if err := repo.Create(ctx, js...); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, op := range []func(jobs.ListQuery) error{
					func(q jobs.ListQuery) error { _, err := repo.CancelMany(ctx, q); return err },
					func(q jobs.ListQuery) error { _, err := repo.RetryMany(ctx, q); return err },
					func(q jobs.ListQuery) error { _, err := repo.CancelMany(ctx, q); return err },
					func(q jobs.ListQuery) error { _, err := repo.DeleteMany(ctx, q); return err },
				} {
					if err := op(q); err != nil {
						b.Fatal(err)
					}
				}
				n += 4 * batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
