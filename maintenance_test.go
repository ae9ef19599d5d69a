package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestPrunerDeletesOldFinishedJobsOnly(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r1 := newRunner(t, repo, jobs.WithRetention(0)) // keeps everything
		r1.Handle("k", noop)
		stop := start(t, r1)
		done, err := r1.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		await(t, r1, done.ID)
		require.NoError(t, stop())
		waiting, err := r1.Enqueue(t.Context(), "k", nil, jobs.WithRunAt(time.Now().Add(time.Hour)))
		require.NoError(t, err)
		require.Equal(t, jobs.StatusSucceeded, get(t, r1, done.ID).Status, "retention 0 keeps finished jobs")

		time.Sleep(5 * time.Millisecond) // let the finished job age past the retention below
		r2 := newRunner(t, reopen(t, repo), jobs.WithRetention(time.Millisecond))
		start(t, r2)
		require.Eventually(t, func() bool {
			_, err := r2.Get(t.Context(), done.ID)
			return err != nil
		}, 10*time.Second, 5*time.Millisecond)
		_, err = r2.Get(t.Context(), done.ID)
		require.ErrorIs(t, err, jobs.ErrNotFound)
		require.Equal(t, jobs.StatusPending, get(t, r2, waiting.ID).Status, "unfinished jobs are never pruned")
	})
}

func TestDeadRunnersJobRunsAgainWithinOneAndAHalfLeases(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		repo := memRepo(t)
		const lease = 2 * time.Second
		r, err := jobs.NewRunner(repo, jobs.WithLeaseDuration(lease))
		require.NoError(t, err)
		started := make(chan time.Time, 1)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			started <- time.Now()
			return nil, nil
		})
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		// A runner that dies right after claiming: nobody renews this lease.
		claimed, err := repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "dead", Limit: 1, LeaseDuration: lease})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		died := time.Now()

		stop := runInBubble(t, r)
		at := <-started
		final, err := r.Await(t.Context(), j.ID)
		require.NoError(t, err)
		require.NoError(t, stop())
		require.GreaterOrEqual(t, at.Sub(died), lease, "not before the lease expired")
		require.LessOrEqual(t, at.Sub(died), lease*3/2)
		require.Equal(t, 2, final.Attempt)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
	})
}
