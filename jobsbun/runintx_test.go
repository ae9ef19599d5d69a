package jobsbun_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// RunInTx announces jobs to the repository's subscribers when, and only
// when, the outermost transaction commits: not at a savepoint, not on
// rollback, and once per commit.
func TestRunInTxAnnouncesOnlyCommittedJobs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		events := make(chan jobs.Event, 8)
		defer repo.Subscribe(func(ev jobs.Event) { events <- ev })()

		require.NoError(t, jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
			require.NoError(t, jobsbun.RunInTx(ctx, tx, func(ctx context.Context, tx bun.Tx) error {
				return repo.CreateTx(ctx, tx, newJob("k", 1))
			}))
			require.Empty(t, events, "a savepoint is not a commit")
			return repo.CreateTx(ctx, tx, newJob("k", 2))
		}))
		require.Equal(t, jobs.Event{Ready: true}, <-events)
		require.Empty(t, events, "one announcement per commit")

		boom := errors.New("boom")
		err := jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
			require.NoError(t, repo.CreateTx(ctx, tx, newJob("k", 3)))
			return boom
		})
		require.ErrorIs(t, err, boom)
		require.NoError(t, jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
			return nil // no job created: nothing to announce
		}))
		require.Empty(t, events, "a rollback or an empty transaction announces nothing")
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, st.Total)
	})
}
