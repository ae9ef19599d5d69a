package jobs_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestMemoryFakeClock shows that MemoryRepository reads time.Now, so a
// testing/synctest bubble can move its clock: leases expire and delayed
// jobs come due without real waiting.
func TestMemoryFakeClock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		repo := jobs.NewMemoryRepository()
		later := &jobs.Job{Kind: "k", RunAt: time.Now().Add(time.Hour)}
		now := &jobs.Job{Kind: "k"}
		require.NoError(t, repo.Create(ctx, later, now))

		q := jobs.ClaimQuery{Owner: "w", Limit: 10, LeaseDuration: time.Minute}
		got, err := repo.Claim(ctx, q)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, now.ID, got[0].ID)

		time.Sleep(2 * time.Minute) // fake time inside the bubble
		rescued, err := repo.RescueExpired(ctx, 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1)
		require.Equal(t, jobs.StatusPending, rescued[0].Status)
		require.ErrorIs(t, repo.Heartbeat(ctx, time.Minute, got[0].Lease()), jobs.ErrLeaseLost)

		time.Sleep(time.Hour)
		got, err = repo.Claim(ctx, q)
		require.NoError(t, err)
		require.Len(t, got, 2, "the delayed job has come due")
	})
}

// TestMemoryClaimManyBuckets checks the claim order across many queues and
// kinds, where the memory repository merges one pending heap per pair.
func TestMemoryClaimManyBuckets(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo := jobs.NewMemoryRepository()
	var want []*jobs.Job
	for p := range 20 {
		j := &jobs.Job{Kind: string(rune('a' + p%4)), Queue: string(rune('q' + p%3)), Priority: p}
		want = append([]*jobs.Job{j}, want...)
		require.NoError(t, repo.Create(ctx, j))
	}
	got, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 5, LeaseDuration: time.Minute})
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, j := range got {
		require.Equal(t, want[i].ID, j.ID, "claim %d takes priority %d", i, want[i].Priority)
	}
	got, err = repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Queues: []string{"r"}, Kinds: []string{"b"}, Limit: 100, LeaseDuration: time.Minute})
	require.NoError(t, err)
	for _, j := range got {
		require.Equal(t, "r", j.Queue)
		require.Equal(t, "b", j.Kind)
	}
	require.NotEmpty(t, got)
}
