package jobs_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

func TestCompletionsShareRepositoryCalls(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		counted := newFaultRepo(repo)
		r := newRunner(t, counted, jobs.WithConcurrency(8))
		var handled atomic.Int64
		r.Handle("k", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
			handled.Add(1)
			return nil, nil
		})
		n := 2000
		if _, mem := repo.(*jobs.MemoryRepository); raceEnabled && !mem {
			n = 500
		}
		reqs := make([]jobs.EnqueueRequest, n)
		for i := range reqs {
			reqs[i] = jobs.EnqueueRequest{Kind: "k"}
		}
		_, err := r.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		stop := start(t, r)
		require.Eventually(t, func() bool { return handled.Load() == int64(n) }, 60*time.Second, time.Millisecond)
		require.NoError(t, stop())
		page, err := r.List(t.Context(), jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusSucceeded}, Limit: rules.MaxListLimit})
		require.NoError(t, err)
		require.Len(t, page.Jobs, min(n, rules.MaxListLimit))
		require.Less(t, counted.finishes(), n/2, "finishes from many workers are grouped")
	})
}

func TestRefusedResultFailsTheJob(t *testing.T) {
	t.Parallel()
	small := testrepo.SQLite(t, jobsqlite.WithRepositoryOptions(jobsbun.WithMaxPayloadBytes(64)))
	r := newRunner(t, small)
	r.Handle("big", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		return json.RawMessage(`"` + strings.Repeat("x", 100) + `"`), nil
	})
	r.Handle("invalid", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		return json.RawMessage(`{not json`), nil
	})
	r.Handle("fine", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		return json.RawMessage(`1`), nil
	})
	start(t, r)
	big, err := r.Enqueue(t.Context(), "big", nil)
	require.NoError(t, err)
	inv, err := r.Enqueue(t.Context(), "invalid", nil)
	require.NoError(t, err)
	fine, err := r.Enqueue(t.Context(), "fine", nil)
	require.NoError(t, err)
	b := await(t, r, big.ID)
	require.Equal(t, jobs.StatusFailed, b.Status)
	require.Contains(t, b.Error, "over the limit")
	i := await(t, r, inv.ID)
	require.Equal(t, jobs.StatusFailed, i.Status)
	require.Contains(t, i.Error, "not valid JSON")
	require.Equal(t, jobs.StatusSucceeded, await(t, r, fine.ID).Status, "one bad result never blocks the others")
}
