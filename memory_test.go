package jobs_test

import (
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobstest"
	"github.com/stretchr/testify/require"
)

func newMemory(t *testing.T) jobs.JobRepository {
	repo, err := jobs.NewMemoryRepository()
	require.NoError(t, err)
	return repo
}

// TestMemoryConformance runs the storage contract against MemoryRepository.
func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, newMemory)
}

// TestMemorySmallPayloadLimit checks that the payload limit option reaches
// Create and Finish.
func TestMemorySmallPayloadLimit(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, func(t *testing.T) jobs.JobRepository {
		repo, err := jobs.NewMemoryRepository(jobs.WithMaxPayloadBytes(64))
		require.NoError(t, err)
		return repo
	}, jobstest.WithMaxPayloadBytes(64))
}

func TestMemoryCreateTxRefused(t *testing.T) {
	t.Parallel()
	repo := newMemory(t)
	err := repo.CreateTx(t.Context(), nil, &jobs.Job{Kind: "k"})
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}
