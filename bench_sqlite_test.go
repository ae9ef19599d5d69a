package jobs_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/uptrace/bun"
)

// sqliteBenchBackends returns the SQLite backend for benchmarks: a file in
// a temporary directory, WAL, synchronous NORMAL.
func sqliteBenchBackends() []benchBackend {
	return []benchBackend{{"sqlite", func(b *testing.B) jobs.JobRepository {
		repo, err := jobsqlite.Open(context.Background(), filepath.Join(b.TempDir(), "jobs.db"),
			jobsqlite.WithSynchronous(jobsqlite.Normal))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = repo.Close() })
		return repo
	}}}
}

// BenchmarkBareBunLoop is the SQL ceiling for BenchmarkDrain on SQLite: one
// goroutine claims 100 jobs with one UPDATE … RETURNING and finishes them
// with one UPDATE, on the repository's own schema, with no runner and no
// repository code in between.
func BenchmarkBareBunLoop(b *testing.B) {
	const n = 20000
	be := sqliteBenchBackends()[0]
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		repo := be.open(b)
		r, err := jobs.NewRunner(repo, jobs.WithAllowUnknownKinds())
		if err != nil {
			b.Fatal(err)
		}
		enqueueN(b, r, "noop", n)
		db := repo.(*jobsbun.Repository).DB()
		b.StartTimer()
		begin := time.Now()
		bareBunLoop(b, db, n)
		total += time.Since(begin)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
}

func bareBunLoop(b *testing.B, db *bun.DB, n int) {
	ctx := context.Background()
	ids := make([]string, 0, 100)
	for done := 0; done < n; {
		now := time.Now().UTC()
		rows, err := db.QueryContext(ctx, `UPDATE jobs SET status = 'running', attempt = attempt + 1,
			lease_owner = 'bare', lease_token = lower(hex(randomblob(16))), started_at = ?, updated_at = ?,
			lease_expires_at = ? WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' 
			AND kind IN ('noop') AND run_at <= ? ORDER BY priority DESC, run_at, id LIMIT 100) RETURNING id`,
			now, now, now.Add(time.Minute), now)
		if err != nil {
			b.Fatal(err)
		}
		ids = ids[:0]
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		if len(ids) == 0 {
			b.Fatalf("ran out of jobs after %d", done)
		}
		if _, err := db.ExecContext(ctx, `UPDATE jobs SET status = 'succeeded', finished_at = ?, updated_at = ?,
			lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, progress_fraction = 1
			WHERE status = 'running' AND id IN (?)`, now, now, bun.List(ids)); err != nil {
			b.Fatal(err)
		}
		done += len(ids)
	}
}
