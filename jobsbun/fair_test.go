package jobsbun

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// TestSQLiteDelayedJobsAreRankedWhenDue checks the storage of fair ranks:
// a job created for later and a job retried for later have rank -1 (out of
// the claim index) until a claim after their RunAt ranks them.
func TestSQLiteDelayedJobsAreRankedWhenDue(t *testing.T) {
	t.Parallel()
	r := openTestSQLite(t)
	ctx := t.Context()
	rank := func(j *jobs.Job) int64 {
		var n int64
		require.NoError(t, r.db.QueryRowContext(ctx, "SELECT fair_rank FROM jobs WHERE id = ?", j.ID.String()).Scan(&n))
		return n
	}
	now := &jobs.Job{Kind: "k"}
	soon := &jobs.Job{Kind: "k", RunAt: time.Now().Add(2 * time.Second)}
	require.NoError(t, r.Create(ctx, now, soon))
	require.Equal(t, int64(0), rank(now))
	require.Equal(t, int64(-1), rank(soon))

	q := jobs.ClaimQuery{Owner: "o", Limit: 10, LeaseDuration: time.Minute}
	got, err := r.Claim(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.NoError(t, r.Finish(ctx, jobs.Completion{Lease: got[0].Lease(), Status: jobs.StatusPending,
		RunAt: time.Now().Add(time.Hour)}))
	require.Equal(t, int64(-1), rank(now), "retried for later")

	require.Eventually(t, func() bool { return rules.Now().After(soon.RunAt) }, 5*time.Second, time.Millisecond)
	got, err = r.Claim(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, soon.ID, got[0].ID)
	require.GreaterOrEqual(t, rank(soon), int64(0), "ranked when it came due")
	require.Equal(t, int64(-1), rank(now), "still waiting")
}
