package jobs_test

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestRetriedJobTakesItsPlaceInLine checks that a retried job goes back to
// the claim order as a new job of its priority would: the memory
// repository keeps a claim index that Retry must update.
func TestRetriedJobTakesItsPlaceInLine(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		ctx := t.Context()
		urgent := &jobs.Job{Kind: "k", Priority: 9}
		require.NoError(t, repo.Create(ctx, urgent))
		_, err := repo.RequestCancel(ctx, urgent.ID)
		require.NoError(t, err)
		low := &jobs.Job{Kind: "k"}
		require.NoError(t, repo.Create(ctx, low))
		_, err = repo.Retry(ctx, urgent.ID)
		require.NoError(t, err)
		q := jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Hour}
		for _, want := range []*jobs.Job{urgent, low} {
			got, err := repo.Claim(ctx, q)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, want.ID, got[0].ID)
		}
		got, err := repo.Claim(ctx, q)
		require.NoError(t, err)
		require.Empty(t, got)
		deleted, err := repo.DeleteMany(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Empty(t, deleted, "running jobs are kept")
	})
}
