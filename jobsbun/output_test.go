package jobsbun_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

func TestReadOutputPagesAndRefuses(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		j, none := newJob("k", 1), newJob("k", 2)
		require.NoError(t, repo.Create(ctx, j))
		c := claimAll(t, repo, 1)[0]
		require.NoError(t, repo.Create(ctx, none))
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, save(c.Lease(), 0.5, `1`, `"a"`, `"b"`, `"c"`, `"d"`, `"e"`)))

		page, err := repo.ReadOutput(ctx, j.ID, 1, 2)
		require.NoError(t, err)
		require.Len(t, page, 2)
		require.Equal(t, int64(2), page[0].Seq)
		require.JSONEq(t, `"b"`, string(page[0].Data))
		require.Equal(t, int64(3), page[1].Seq)
		page, err = repo.ReadOutput(ctx, j.ID, 5, 10)
		require.NoError(t, err)
		require.NotNil(t, page)
		require.Empty(t, page, "nothing after the last item")
		page, err = repo.ReadOutput(ctx, none.ID, 0, 10)
		require.NoError(t, err)
		require.NotNil(t, page)
		require.Empty(t, page, "a job without output")

		_, err = repo.ReadOutput(ctx, uuid.New(), 0, 10)
		require.ErrorIs(t, err, jobs.ErrNotFound)
		for _, bad := range []struct {
			after int64
			limit int
		}{{-1, 10}, {0, 0}, {0, 1001}} {
			_, err = repo.ReadOutput(ctx, j.ID, bad.after, bad.limit)
			require.ErrorIs(t, err, jobs.ErrInvalidArgument, bad)
		}
	})
}

func TestReadOutputOnClosedRepository(t *testing.T) {
	t.Parallel()
	repo := testrepo.SQLite(t)
	require.NoError(t, repo.Close())
	_, err := repo.ReadOutput(t.Context(), uuid.New(), 0, 10)
	require.ErrorIs(t, err, jobs.ErrClosed)
}

func TestFinishAppendsOutputWhenTheJobEnds(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		ok, failed, retried, canceled, plain, lost := newJob("k", 1), newJob("k", 2), newJob("k", 3), newJob("k", 4), newJob("k", 5), newJob("k", 6)
		require.NoError(t, repo.Create(ctx, ok, failed, retried, canceled, plain, lost))
		byID := map[uuid.UUID]*jobs.Job{}
		for _, c := range claimAll(t, repo, 6) {
			byID[c.ID] = c
		}
		lease := func(j *jobs.Job) jobs.Lease { return byID[j.ID].Lease() }
		// Each job saved one item with a checkpoint first.
		var ups []jobs.ProgressUpdate
		for _, j := range []*jobs.Job{ok, failed, retried, canceled, plain, lost} {
			ups = append(ups, save(lease(j), 0.5, `1`, `"saved"`))
		}
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, ups...))
		_, err := repo.RequestCancel(ctx, canceled.ID)
		require.NoError(t, err)
		stale := lease(lost)
		stale.Token = "stale"

		err = repo.Finish(ctx,
			jobs.Completion{Lease: lease(ok), Status: jobs.StatusSucceeded, Output: items(`"t1"`, `"t2"`)},
			jobs.Completion{Lease: lease(failed), Status: jobs.StatusFailed, Error: "boom", Output: items(`"f"`)},
			jobs.Completion{Lease: lease(retried), Status: jobs.StatusPending, Error: "again", Output: items(`"dropped"`)},
			jobs.Completion{Lease: lease(canceled), Status: jobs.StatusPending, Error: "again", Output: items(`"c"`)},
			jobs.Completion{Lease: lease(plain), Status: jobs.StatusSucceeded},
			jobs.Completion{Lease: stale, Status: jobs.StatusSucceeded, Output: items(`"lost"`)},
		)
		require.ErrorIs(t, err, jobs.ErrCanceled, "the retry of a job with a cancel request ends canceled")
		require.ErrorIs(t, err, jobs.ErrLeaseLost)

		for _, tc := range []struct {
			j      *jobs.Job
			status jobs.Status
			out    []string
		}{
			{ok, jobs.StatusSucceeded, []string{`"saved"`, `"t1"`, `"t2"`}},
			{failed, jobs.StatusFailed, []string{`"saved"`, `"f"`}},
			{retried, jobs.StatusPending, []string{`"saved"`}},
			{canceled, jobs.StatusCanceled, []string{`"saved"`, `"c"`}},
			{plain, jobs.StatusSucceeded, []string{`"saved"`}},
			{lost, jobs.StatusRunning, []string{`"saved"`}},
		} {
			got, err := repo.Get(ctx, tc.j.ID)
			require.NoError(t, err)
			require.Equal(t, tc.status, got.Status, tc.out)
			require.Equal(t, int64(len(tc.out)), got.OutputSeq, tc.out)
			require.JSONEq(t, `1`, string(got.Checkpoint), "the checkpoint stays")
			require.Equal(t, tc.out, readAll(t, repo, tc.j.ID))
		}
		got, err := repo.Get(ctx, ok.ID)
		require.NoError(t, err)
		require.Equal(t, 1.0, got.Progress.Fraction, "a success with output is still a success")
	})
}

func TestPruneDeletesTheOutputOfPrunedJobs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		old, bare, running := newJob("k", 1), newJob("k", 2), newJob("k", 3)
		require.NoError(t, repo.Create(ctx, old, bare, running))
		byID := map[uuid.UUID]*jobs.Job{}
		for _, c := range claimAll(t, repo, 3) {
			byID[c.ID] = c
		}
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute,
			save(byID[old.ID].Lease(), 0.5, `1`, `"a"`, `"b"`), save(byID[running.ID].Lease(), 0.5, `1`, `"r"`)))
		require.NoError(t, repo.Finish(ctx,
			jobs.Completion{Lease: byID[old.ID].Lease(), Status: jobs.StatusSucceeded, Output: items(`"c"`)},
			jobs.Completion{Lease: byID[bare.ID].Lease(), Status: jobs.StatusSucceeded}))

		n, err := repo.Prune(ctx, time.Now().Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		_, err = repo.ReadOutput(ctx, old.ID, 0, 10)
		require.ErrorIs(t, err, jobs.ErrNotFound)
		var left int
		require.NoError(t, repo.DB().QueryRowContext(ctx, "SELECT count(*) FROM job_output WHERE job_id = ?", old.ID.String()).Scan(&left))
		require.Zero(t, left, "the pruned job's output is gone")
		require.Equal(t, []string{`"r"`}, readAll(t, repo, running.ID), "a running job keeps its output")
	})
}
