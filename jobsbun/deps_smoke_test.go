package jobsbun_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"
)

func depsBackends(t *testing.T) map[string]func(t *testing.T) *jobsbun.Repository {
	m := map[string]func(t *testing.T) *jobsbun.Repository{"sqlite": func(t *testing.T) *jobsbun.Repository { return testrepo.SQLite(t) }}
	m["postgres"] = func(t *testing.T) *jobsbun.Repository { return testrepo.Postgres(t) }
	return m
}

func TestDepsSmoke(t *testing.T) {
	for name, open := range depsBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			repo := open(t)
			a := &jobs.Job{Kind: "a"}
			b := &jobs.Job{Kind: "b", After: []*jobs.Job{a}}
			c := &jobs.Job{Kind: "c", After: []*jobs.Job{b}}
			d := &jobs.Job{Kind: "d", After: []*jobs.Job{b}, RunAnyway: true}
			require.NoError(t, repo.Create(ctx, a, b, c, d))
			require.Equal(t, jobs.StatusPending, a.Status)
			require.Equal(t, jobs.StatusWaiting, b.Status)
			got, err := repo.Get(ctx, c.ID)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusWaiting, got.Status)
			require.Equal(t, []uuid.UUID{b.ID}, got.DependsOn)
			cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: time.Minute})
			require.NoError(t, err)
			require.Len(t, cl, 1)
			require.Equal(t, a.ID, cl[0].ID)
			require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cl[0].Lease(), Status: jobs.StatusFailed, Error: "x"}))
			for _, j := range []*jobs.Job{b, c} {
				got, err := repo.Get(ctx, j.ID)
				require.NoError(t, err)
				require.Equal(t, jobs.StatusCanceled, got.Status, j.Kind)
				t.Log(got.Error)
			}
			got, err = repo.Get(ctx, d.ID)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusPending, got.Status)
			cl, err = repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: time.Minute})
			require.NoError(t, err)
			require.Len(t, cl, 1)
			require.Equal(t, d.ID, cl[0].ID)
			st, err := repo.Stats(ctx)
			require.NoError(t, err)
			t.Log(st.ByStatus)
		})
	}
}
