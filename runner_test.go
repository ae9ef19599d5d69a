package jobs_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

type addIn struct{ A, B int }

func TestRunnerRunsTypedHandler(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		jobs.Handle(r, "add", func(ctx context.Context, j *jobs.Job, in addIn, p jobs.Reporter) (int, error) {
			require.NoError(t, p.Report(0.5, "half"))
			return in.A + in.B, nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "add", addIn{2, 3})
		require.NoError(t, err)
		sum, final, err := jobs.AwaitResult[int](t.Context(), r, j.ID)
		require.NoError(t, err)
		require.Equal(t, 5, sum)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, 1, final.Attempt)
		require.Equal(t, 1.0, final.Progress.Fraction)
		require.Equal(t, "half", final.Progress.Message)
		require.JSONEq(t, "5", string(final.Result))
		_ = json.RawMessage{}
	})
}
