package jobsbun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/uptrace/bun"
)

// BenchmarkGrowth measures the calls whose cost could grow with the table:
// with a table of finished jobs (1,000,000 with JOBS_LONG_TESTS=1, or
// JOBS_GROWTH_ROWS of them; 20,000 otherwise, as a smoke pass), it times
// the first List page under filters that match few or no rows, the counts
// (Stats), Get, a one-job Create, and last a Prune of the whole
// table. Run it with
//
//	JOBS_LONG_TESTS=1 go test -run '^$' -bench Growth -benchtime 1x -timeout 40m ./jobsbun
//
// (PostgreSQL too when JOBS_TEST_POSTGRES_DSN is set). The table holds
// kinds a, b, c and d in queues default and mail, 98% succeeded, 1% failed
// and 1% canceled; kind "rare" has one job in a thousand.
func BenchmarkGrowth(b *testing.B) {
	rows := 20_000
	if os.Getenv("JOBS_LONG_TESTS") != "" {
		rows = 1_000_000
	}
	if s := os.Getenv("JOBS_GROWTH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("JOBS_GROWTH_ROWS=%q: want a number >= 1000", s)
		}
		rows = n
	}
	for _, be := range growthRepos() {
		b.Run(fmt.Sprintf("%s/rows=%d", be.name, rows), func(b *testing.B) {
			repo := be.open(b)
			begin := time.Now()
			ids := fillFinished(b, repo, rows)
			b.Logf("filled %d finished jobs in %s", rows, time.Since(begin).Round(time.Millisecond))
			benchGrowthReads(b, repo, ids)
			benchGrowthPrune(b, repo, rows)
		})
	}
}

// growthRepos are the backends of BenchmarkGrowth.
func growthRepos() []struct {
	name string
	open func(b *testing.B) *jobsbun.Repository
} {
	rs := benchRepos()
	out := rs[:1] // synchronous=FULL changes only writes; one SQLite is enough
	for _, r := range rs {
		if r.name == "postgres" {
			out = append(out, r)
		}
	}
	return out
}

// benchGrowthReads times each read on the filled table.
func benchGrowthReads(b *testing.B, repo *jobsbun.Repository, ids []uuid.UUID) {
	lists := []struct {
		name string
		q    jobs.ListQuery
	}{
		{"none", jobs.ListQuery{}},
		{"status=pending", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending}}},
		{"status=running", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusRunning}}},
		{"status=failed", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}},
		{"status=failed,canceled", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed, jobs.StatusCanceled}}},
		{"kind=rare", jobs.ListQuery{Kind: "rare"}},
		{"kind=absent", jobs.ListQuery{Kind: "absent"}},
		{"kind=a,status=failed", jobs.ListQuery{Kind: "a", Statuses: []jobs.Status{jobs.StatusFailed}}},
		{"kind=rare,status=failed", jobs.ListQuery{Kind: "rare", Statuses: []jobs.Status{jobs.StatusFailed}}},
		{"kind=a,status=pending", jobs.ListQuery{Kind: "a", Statuses: []jobs.Status{jobs.StatusPending}}},
		{"queue=mail,status=failed", jobs.ListQuery{Queue: "mail", Statuses: []jobs.Status{jobs.StatusFailed}}},
	}
	for _, l := range lists {
		b.Run("list/"+l.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := repo.List(b.Context(), l.q); err != nil {
					b.Fatal(err)
				}
			}
			reportMS(b)
		})
	}
	b.Run("stats", func(b *testing.B) {
		for b.Loop() {
			if _, err := repo.Stats(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
		reportMS(b)
	})
	b.Run("get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := repo.Get(b.Context(), ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i += 7919 // a prime: spread over the table
		}
		reportMS(b)
	})
	b.Run("create", func(b *testing.B) {
		for b.Loop() {
			if err := repo.Create(b.Context(), &jobs.Job{Kind: "new", Payload: json.RawMessage(`{}`)}); err != nil {
				b.Fatal(err)
			}
		}
		reportMS(b)
	})
}

// benchGrowthPrune times a Prune of every finished job; iterations after the
// first refill the table first, outside the timer.
func benchGrowthPrune(b *testing.B, repo *jobsbun.Repository, rows int) {
	b.Run("prune", func(b *testing.B) {
		pruned := 0
		first := true
		for b.Loop() {
			if !first {
				b.StopTimer()
				fillFinished(b, repo, rows)
				b.StartTimer()
			}
			first = false
			n, err := repo.Prune(b.Context(), time.Now().Add(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			if n < rows {
				b.Fatalf("pruned %d jobs, want at least %d", n, rows)
			}
			pruned += n
		}
		b.ReportMetric(float64(pruned)/b.Elapsed().Seconds(), "rows/s")
	})
}

// reportMS reports the mean time of one call in milliseconds.
func reportMS(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// fillFinished creates n jobs through the repository and finishes them
// with SQL (a Claim and Finish per job would take minutes), and returns a
// sample of their IDs. One job in 100 ends failed, one in 100 canceled, the
// rest succeeded; kinds and queues are as BenchmarkGrowth describes.
func fillFinished(b testing.TB, repo *jobsbun.Repository, n int) []uuid.UUID {
	b.Helper()
	ctx := context.Background()
	const batch = 1000
	kinds := []string{"a", "b", "c", "d"}
	var sample []uuid.UUID
	js := make([]*jobs.Job, batch)
	for done := 0; done < n; done += batch {
		k := min(batch, n-done)
		for i := range k {
			j := &jobs.Job{Kind: kinds[(done+i)%len(kinds)], Queue: "default", Payload: json.RawMessage(`{"n":1}`)}
			if (done+i)%2 == 1 {
				j.Queue = "mail"
			}
			if (done+i)%1000 == 999 {
				j.Kind = "rare"
			}
			js[i] = j
		}
		if err := repo.Create(ctx, js[:k]...); err != nil {
			b.Fatal(err)
		}
		var failed, canceled []string
		for i, j := range js[:k] {
			switch (done + i) % 100 {
			case 37:
				failed = append(failed, j.ID.String())
			case 71:
				canceled = append(canceled, j.ID.String())
			}
		}
		sample = append(sample, js[0].ID, js[k-1].ID)
		finishWithSQL(b, repo, js[0].ID, js[k-1].ID, failed, canceled)
	}
	if repo.DB().Dialect().Name().String() == "pg" {
		// A table that grew over a week has been vacuumed and analysed;
		// one filled in a minute still has every job's dead entry in the
		// claim index (100 000 heap fetches for a List of pending jobs at
		// 100 000 rows) and the statistics of a table of pending jobs.
		if _, err := repo.DB().ExecContext(ctx, "VACUUM ANALYZE jobs"); err != nil {
			b.Fatal(err)
		}
	}
	return sample
}

// finishWithSQL ends the pending jobs whose IDs lie in [from, to]: those
// in failed and canceled with those statuses, the others succeeded.
func finishWithSQL(b testing.TB, repo *jobsbun.Repository, from, to uuid.UUID, failed, canceled []string) {
	b.Helper()
	db := repo.DB()
	ctx := context.Background()
	cast := ""
	if db.Dialect().Name().String() == "pg" {
		cast = "::uuid"
	}
	now := time.Now().UTC()
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		set := "UPDATE jobs SET status = ?, finished_at = ?, started_at = created_at, attempt = 1, updated_at = ? WHERE status = 'pending' AND "
		if len(failed) > 0 {
			if _, err := tx.ExecContext(ctx, set+"id IN (?)", "failed", now, now, bun.List(failed)); err != nil {
				return err
			}
		}
		if len(canceled) > 0 {
			if _, err := tx.ExecContext(ctx, set+"id IN (?)", "canceled", now, now, bun.List(canceled)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, set+"id >= ?"+cast+" AND id <= ?"+cast, "succeeded", now, now, from.String(), to.String())
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
