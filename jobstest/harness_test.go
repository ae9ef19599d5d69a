package jobstest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestCollectLost(t *testing.T) {
	t.Parallel()
	a, b := uuid.New(), uuid.New()
	lost := func(id uuid.UUID) error { return &jobs.Error{Code: jobs.ErrLeaseLost, JobID: id} }
	err := errors.Join(
		lost(a),
		fmt.Errorf("wrapped: %w", lost(b)),
		&jobs.Error{Code: jobs.ErrConflict, JobID: uuid.New()},
		errors.New("plain"),
	)
	var got []uuid.UUID
	collectLost(err, &got)
	require.Equal(t, []uuid.UUID{a, b}, got)
	got = nil
	collectLost(nil, &got)
	require.Empty(t, got)
}

func TestNonZero(t *testing.T) {
	t.Parallel()
	in := map[jobs.Status]int{jobs.StatusPending: 2, jobs.StatusFailed: 0}
	require.Equal(t, map[jobs.Status]int{jobs.StatusPending: 2}, nonZero(in))
	require.Empty(t, nonZero(nil))
}

func TestJobsOf(t *testing.T) {
	t.Parallel()
	js := jobsOf("k", 3)
	require.Len(t, js, 3)
	for i, j := range js {
		require.Equal(t, "k", j.Kind)
		require.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(j.Payload))
	}
}

// TestRunOptions checks that the options reach the suite's configuration.
func TestRunOptions(t *testing.T) {
	t.Parallel()
	cfg := config{}
	begin := WithTx(nil)
	for _, o := range []Option{WithMaxPayloadBytes(7), WithStressJobs(9), begin} {
		o(&cfg)
	}
	require.Equal(t, 7, cfg.maxPayload)
	require.Equal(t, 9, cfg.stressJobs)
	require.Nil(t, cfg.beginTx)
	require.Positive(t, defaultStressJobs)
}
