package jobsbun_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testrepo"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

// forEachBackend runs fn as a parallel subtest on a fresh SQLite file and,
// when JOBS_TEST_POSTGRES_DSN is set, a fresh PostgreSQL schema.
func forEachBackend(t *testing.T, fn func(t *testing.T, repo *jobsbun.Repository)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, testrepo.SQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, testrepo.Postgres(t))
	})
}

func newJob(kind string, payload any) *jobs.Job {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return &jobs.Job{Kind: kind, Payload: b}
}

func claimAll(t *testing.T, repo jobs.JobRepository, n int) []*jobs.Job {
	t.Helper()
	got, err := repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "w1", Limit: n, LeaseDuration: time.Minute})
	require.NoError(t, err)
	return got
}

func TestBunCreateGetList(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		var created []*jobs.Job
		for i := range 7 {
			j := newJob("k"+fmt.Sprint(i%2), map[string]int{"i": i})
			j.Queue = []string{"", "q2"}[i%2]
			created = append(created, j)
		}
		require.NoError(t, repo.Create(ctx, created...))
		for _, j := range created {
			require.NotEqual(t, uuid.Nil, j.ID)
			require.Equal(t, jobs.StatusPending, j.Status)
			got, err := repo.Get(ctx, j.ID)
			require.NoError(t, err)
			require.JSONEq(t, string(j.Payload), string(got.Payload))
			require.True(t, j.CreatedAt.Equal(got.CreatedAt), "%v vs %v", j.CreatedAt, got.CreatedAt)
			require.True(t, j.RunAt.Equal(got.RunAt))
			require.Equal(t, time.UTC, got.CreatedAt.Location())
			require.Equal(t, j.Queue, got.Queue)
			require.Equal(t, rules.DefaultMaxAttempts, got.MaxAttempts)
		}

		var seen []uuid.UUID
		q := jobs.ListQuery{Limit: 3}
		for {
			p, err := repo.List(ctx, q)
			require.NoError(t, err)
			for _, j := range p.Jobs {
				seen = append(seen, j.ID)
			}
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		require.Len(t, seen, 7)
		for i := range 7 {
			require.Equal(t, created[6-i].ID, seen[i], "newest first")
		}
		p, err := repo.List(ctx, jobs.ListQuery{Queue: "q2", Kind: "k1", Statuses: []jobs.Status{jobs.StatusPending}})
		require.NoError(t, err)
		require.Len(t, p.Jobs, 3)
		p, err = repo.List(ctx, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusRunning}})
		require.NoError(t, err)
		require.Empty(t, p.Jobs)

		_, err = repo.List(ctx, jobs.ListQuery{Cursor: "'; DROP TABLE jobs; --"})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		_, err = repo.Get(ctx, uuid.New())
		require.ErrorIs(t, err, jobs.ErrNotFound)

		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 7, st.Total)
		require.Equal(t, 4, st.ByQueue["default"][jobs.StatusPending])
		require.Equal(t, 3, st.ByKind["k1"][jobs.StatusPending])
	})
}

func errorsAs(err error) (*jobs.Error, bool) { return errors.AsType[*jobs.Error](err) }
