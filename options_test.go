package jobs_test

import (
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestWithMaxPayloadBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		n    int
		ok   bool
	}{
		{"zero", 0, false},
		{"negative", -1, false},
		{"one", 1, true},
		{"default", jobs.DefaultMaxPayloadBytes, true},
		{"large", 64 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := jobs.NewMemoryRepository(jobs.WithMaxPayloadBytes(tc.n))
			if !tc.ok {
				require.ErrorIs(t, err, jobs.ErrInvalidArgument)
				require.Nil(t, repo)
				return
			}
			require.NoError(t, err)
			require.NoError(t, repo.Close())
		})
	}
}

func TestWithMaxPayloadBytesApplies(t *testing.T) {
	t.Parallel()
	repo, err := jobs.NewMemoryRepository(jobs.WithMaxPayloadBytes(4))
	require.NoError(t, err)
	require.NoError(t, repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: []byte(`1234`)}))
	require.ErrorIs(t, repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: []byte(`12345`)}), jobs.ErrTooLarge)
}
