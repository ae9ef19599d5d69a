package jobsbun_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

// TestAdminOperationsNotifySubscribers checks that the runners of this
// process that subscribed to the repository hear of what an admin
// operation changed: retried jobs are ready to claim, running jobs asked
// to cancel are named, and every changed job wakes its watchers.
func TestAdminOperationsNotifySubscribers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		evs := make(chan jobs.Event, 16)
		defer repo.Subscribe(func(ev jobs.Event) { evs <- ev })()
		next := func() jobs.Event {
			select {
			case ev := <-evs:
				return ev
			case <-time.After(10 * time.Second):
				t.Fatal("no event")
			}
			return jobs.Event{}
		}

		a, b := newJob("k", 1), newJob("k", 2)
		require.NoError(t, repo.Create(ctx, a, b))
		_, err := repo.RequestCancel(ctx, a.ID)
		require.NoError(t, err)
		claimed, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 1, LeaseDuration: time.Hour})
		require.NoError(t, err)
		require.Equal(t, b.ID, claimed[0].ID)

		got, err := repo.CancelMany(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{b.ID}, got)
		require.Equal(t, jobs.Event{Canceled: []uuid.UUID{b.ID}, Changed: []uuid.UUID{b.ID}}, next())

		got, err = repo.RetryMany(ctx, jobs.ListQuery{})
		require.NoError(t, err)
		require.Equal(t, []uuid.UUID{a.ID}, got)
		require.Equal(t, jobs.Event{Ready: true, Changed: []uuid.UUID{a.ID}}, next())

		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: claimed[0].Lease(), Status: jobs.StatusCanceled}))
		require.NoError(t, repo.Delete(ctx, b.ID))
		require.Equal(t, jobs.Event{Changed: []uuid.UUID{b.ID}}, next())
		select {
		case ev := <-evs:
			t.Fatalf("unexpected event %+v", ev)
		default:
		}
	})
}

// TestSQLiteAdminBatchesWalkThePrimaryKey explains the statement of a
// batch: its subquery reads the primary key newest first and stops at the
// limit, instead of sorting every matching job.
func TestSQLiteAdminBatchesWalkThePrimaryKey(t *testing.T) {
	t.Parallel()
	db, log, repo := loggedSQLite(t) // schema_test.go
	_, err := repo.DeleteMany(t.Context(), jobs.ListQuery{Kind: "k", Limit: 10, Cursor: uuid.Must(uuid.NewV7()).String()})
	require.NoError(t, err)
	plan := explainSQLite(t, db, log.last("DELETE FROM jobs WHERE"))
	require.NotContains(t, plan, "TEMP B-TREE", plan)
	require.Contains(t, plan, "sqlite_autoindex_jobs_1", plan)
}
