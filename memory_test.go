package jobs_test

import (
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobstest"
	"github.com/stretchr/testify/require"
)

func newMemory(t *testing.T) jobs.JobRepository {
	return jobs.NewMemoryRepository()
}

// TestMemoryConformance runs the storage contract against MemoryRepository.
func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	jobstest.Run(t, newMemory)
}

func TestMemoryCreateTxRefused(t *testing.T) {
	t.Parallel()
	repo := newMemory(t)
	err := repo.CreateTx(t.Context(), nil, &jobs.Job{Kind: "k"})
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}
