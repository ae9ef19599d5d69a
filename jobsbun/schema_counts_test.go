package jobsbun

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/migrate"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestCountsStepCountsAnExistingDatabase builds a database of the schema
// before the counts, with finished, pending and running jobs in it, and
// opens a repository on it: the step counts the finished jobs already
// there, so Stats matches the table, and later finishes and prunes keep
// it so.
func TestCountsStepCountsAnExistingDatabase(t *testing.T) {
	t.Parallel()
	for name := range rawDBs { // schema_output_test.go
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, last := migratedBefore(t, name, "list indexes and counts")
			now := time.Now().UTC()
			for i, status := range []string{"succeeded", "succeeded", "failed", "canceled", "succeeded", "pending", "running"} {
				var finished any
				if status != "pending" && status != "running" {
					finished = now
				}
				_, err := db.ExecContext(ctx, "INSERT INTO jobs (id, kind, queue, status, payload, max_attempts, run_at, created_at, updated_at, finished_at) "+
					"VALUES (?, ?, ?, ?, '{}', 3, ?, ?, ?, ?)",
					uuid.Must(uuid.NewV7()).String(), []string{"a", "b"}[i%2], []string{"q1", "q2", "q3"}[i%3], status, now, now, now, finished)
				require.NoError(t, err)
			}

			r, err := New(ctx, db)
			require.NoError(t, err)
			t.Cleanup(func() { r.Close() })
			v, err := migrate.Current(ctx, db)
			require.NoError(t, err)
			require.Equal(t, last, v)

			want := &jobs.Stats{}
			want.Add("q1", "a", jobs.StatusSucceeded, 1)
			want.Add("q2", "b", jobs.StatusSucceeded, 1)
			want.Add("q3", "a", jobs.StatusFailed, 1)
			want.Add("q1", "b", jobs.StatusCanceled, 1)
			want.Add("q2", "a", jobs.StatusSucceeded, 1)
			want.Add("q3", "b", jobs.StatusPending, 1)
			want.Add("q1", "a", jobs.StatusRunning, 1)
			got, err := r.Stats(ctx)
			require.NoError(t, err)
			require.Equal(t, want.ByStatus, got.ByStatus)
			require.Equal(t, want.ByKind, got.ByKind)
			require.Equal(t, want.ByQueue, got.ByQueue)
			require.Equal(t, 7, got.Total)

			pruned, err := r.Prune(ctx, now.Add(time.Second))
			require.NoError(t, err)
			require.Equal(t, 5, pruned)
			got, err = r.Stats(ctx)
			require.NoError(t, err)
			require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 1, jobs.StatusRunning: 1}, got.ByStatus)

			page, err := r.List(ctx, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending, jobs.StatusRunning}})
			require.NoError(t, err)
			require.Len(t, page.Jobs, 2)
		})
	}
}
