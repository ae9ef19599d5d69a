package jobs_test

import (
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestRunnerQueuesReportsTheRepository checks that Runner.Queues hands
// back the repository's description of each queue, latency included
// (that the latency is the wait of the oldest ready job is checked by the
// conformance suite, with jobs whose RunAt lies in the past).
func TestRunnerQueuesReportsTheRepository(t *testing.T) {
	t.Parallel()
	repo := jobs.NewMemoryRepository()
	r := newRunner(t, repo, jobs.WithAllowUnknownKinds())
	_, err := r.Enqueue(t.Context(), "k", nil, jobs.InQueue("mail"))
	require.NoError(t, err)
	require.NoError(t, r.PauseQueue(t.Context(), "idle"))
	got, err := r.Queues(t.Context())
	require.NoError(t, err)
	want, err := repo.Queues(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "idle", got[0].Name)
	require.True(t, got[0].Paused)
	require.Equal(t, "mail", got[1].Name)
	require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 1}, got[1].Counts)
	require.Equal(t, 1, got[1].Ready)
	require.GreaterOrEqual(t, want[1].Latency, got[1].Latency, "the later call saw the same job wait longer")
	require.Less(t, want[1].Latency, time.Minute)
}
