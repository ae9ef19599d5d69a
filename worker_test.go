package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestLongJobsAreNotClaimedAheadOfFreeWorkers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		release := make(chan struct{})
		var mu sync.Mutex
		ran := map[string]int{}
		handler := func(owner string) jobs.HandlerFunc {
			return func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				mu.Lock()
				ran[owner]++
				mu.Unlock()
				<-release
				return nil, nil
			}
		}
		a := newRunner(t, repo, jobs.WithConcurrency(2), jobs.WithOwner("a"))
		a.Handle("long", handler("a"))
		b := newRunner(t, reopen(t, repo), jobs.WithConcurrency(2), jobs.WithOwner("b"))
		b.Handle("long", handler("b"))
		reqs := make([]jobs.EnqueueRequest, 4)
		for i := range reqs {
			reqs[i] = jobs.EnqueueRequest{Kind: "long"}
		}
		js, err := a.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		start(t, a)
		start(t, b)
		// Each runner holds only as many jobs as it has free workers, so the
		// four long jobs spread over both.
		for _, j := range js {
			requireStatus(t, a, j.ID, jobs.StatusRunning)
		}
		close(release)
		for _, j := range js {
			require.Equal(t, jobs.StatusSucceeded, await(t, a, j.ID).Status)
		}
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, map[string]int{"a": 2, "b": 2}, ran)
	})
}
