package jobs_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/uptrace/bun"
)

// PostgreSQL in the runner benchmarks (BenchmarkDrain, BenchmarkEnqueue,
// BenchmarkBareRepositoryLoop, …) when JOBS_TEST_POSTGRES_DSN is set, and
// the bare SKIP LOCKED loop they are compared with:
//
//	go test -run '^$' -bench 'Drain$|BareRepositoryLoop|BareBunLoopPostgres' -benchtime 3x .

// postgresBenchBackends returns the PostgreSQL backend for benchmarks (a
// schema of its own per benchmark) when the DSN is set, else nothing.
func postgresBenchBackends() []benchBackend {
	if os.Getenv(testdb.PostgresEnv) == "" {
		return nil
	}
	return []benchBackend{{"postgres", func(b *testing.B) jobs.JobRepository {
		return testrepo.Postgres(b, jobspg.WithMaxOpenConns(16))
	}}}
}

// BenchmarkBareBunLoopPostgres is the SQL ceiling for BenchmarkDrain on
// PostgreSQL: one goroutine claims 100 jobs with UPDATE … WHERE id =
// ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED)) RETURNING and finishes them
// with one UPDATE, on the repository's schema (triggers included), with no
// runner and no repository code in between.
func BenchmarkBareBunLoopPostgres(b *testing.B) {
	const n = 20000
	bes := postgresBenchBackends()
	if len(bes) == 0 {
		b.Skipf("set %s", testdb.PostgresEnv)
	}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		repo := bes[0].open(b)
		r, err := jobs.NewRunner(repo, jobs.WithAllowUnknownKinds())
		if err != nil {
			b.Fatal(err)
		}
		enqueueN(b, r, "noop", n)
		db := repo.(*jobsbun.Repository).DB()
		b.StartTimer()
		begin := time.Now()
		bareSkipLockedLoop(b, db, n)
		total += time.Since(begin)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
}

func bareSkipLockedLoop(b *testing.B, db *bun.DB, n int) {
	ctx := context.Background()
	ids := make([]string, 0, 100)
	for done := 0; done < n; {
		rows, err := db.QueryContext(ctx, `UPDATE jobs SET status = 'running', attempt = attempt + 1,
			lease_owner = 'bare', lease_token = gen_random_uuid()::text, started_at = now(), updated_at = now(),
			lease_expires_at = now() + interval '1 minute' WHERE id = ANY(ARRAY(SELECT id FROM jobs
			WHERE status = 'pending' AND queue = 'default' AND kind IN ('noop') AND run_at <= now()
			ORDER BY priority DESC, run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED)) RETURNING id`)
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
		if _, err := db.ExecContext(ctx, `UPDATE jobs SET status = 'succeeded', finished_at = now(),
			updated_at = now(), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
			WHERE id IN (?)`, bun.List(ids)); err != nil {
			b.Fatal(err)
		}
		done += len(ids)
	}
}
