package jobsbun_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testrepo"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/dialect"
)

// storedRow is what raw SQL reads of a job whose row the repository cannot
// read.
type storedRow struct {
	status, error, errors string
	attempt               int
	leased, finished      bool
}

// readStored reads the row of job id with raw SQL, bypassing the
// repository's scanner.
func readStored(t *testing.T, repo *jobsbun.Repository, id uuid.UUID) storedRow {
	t.Helper()
	var r storedRow
	var errs *string
	err := repo.DB().QueryRowContext(t.Context(), "SELECT status, error, CAST(errors AS TEXT), attempt, "+
		"lease_token IS NOT NULL OR lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL, finished_at IS NOT NULL "+
		"FROM jobs WHERE id = ?", id.String()).Scan(&r.status, &r.error, &errs, &r.attempt, &r.leased, &r.finished)
	require.NoError(t, err)
	if errs != nil {
		r.errors = *errs
	}
	return r
}

// damage makes the stored row of job id unreadable with raw SQL, as other
// code writing the table might: a creation time that is not a time
// (PostgreSQL's timestamptz accepts 'infinity', which no time.Time holds).
// It returns the text the scan error names.
func damage(t *testing.T, repo *jobsbun.Repository, id uuid.UUID) string {
	t.Helper()
	bad := "not a time"
	if repo.DB().Dialect().Name() == dialect.PG {
		bad = "infinity"
	}
	_, err := repo.DB().ExecContext(t.Context(), "UPDATE jobs SET created_at = ? WHERE id = ?", bad, id.String())
	require.NoError(t, err)
	return bad
}

// TestBunUnreadableRowFailsAtOnce damages a stored row so that it cannot be
// read back: a claim of it hands out the other rows of its batch, and the
// damaged job ends failed at once with the cause as its error, instead of
// running under a lease nobody holds until the rescuer retries it.
func TestBunUnreadableRowFailsAtOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		good, bad, other := newJob("k", 1), newJob("k", 2), newJob("k", 3)
		require.NoError(t, repo.Create(ctx, good, bad, other))
		cause := damage(t, repo, bad.ID)

		cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w1", Limit: 10, LeaseDuration: time.Hour})
		require.NoError(t, err)
		require.Len(t, cl, 2, "the other rows of the batch are claimed")
		for _, j := range cl {
			require.NotEqual(t, bad.ID, j.ID)
			require.Equal(t, jobs.StatusRunning, j.Status)
		}
		got := readStored(t, repo, bad.ID)
		require.Equal(t, jobs.StatusFailed, jobs.Status(got.status), "the damaged job fails at once")
		require.Contains(t, got.error, "stored job cannot be read")
		require.Contains(t, got.error, cause, "the error names the cause")
		require.Contains(t, got.errors, "stored job cannot be read", "the attempt's error is in the history")
		require.Equal(t, 1, got.attempt)
		require.False(t, got.leased, "the lease is cleared")
		require.True(t, got.finished)

		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, st.ByStatus[jobs.StatusRunning])
		require.Equal(t, 1, st.ByStatus[jobs.StatusFailed])
		rescued, err := repo.RescueExpired(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, rescued)
		require.Empty(t, claimAll(t, repo, 10))
		for _, j := range cl {
			require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}))
		}
	})
}

// TestBunRescueOfUnreadableRowFailsIt damages the row of a running job
// whose lease expired: the rescuer cannot return it, and instead of
// requeueing it to be dropped again (or failing it as "lease expired" once
// its attempts are spent) it fails it with the cause.
func TestBunRescueOfUnreadableRowFailsIt(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		retry, last, fine := newJob("k", 1), newJob("k", 2), newJob("k", 3)
		retry.MaxAttempts, last.MaxAttempts, fine.MaxAttempts = 3, 1, 3
		require.NoError(t, repo.Create(ctx, retry, last, fine))
		require.Len(t, claimAll(t, repo, 10), 3)
		expired := time.Now().Add(-time.Hour)
		_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET lease_expires_at = ?", expired)
		require.NoError(t, err)
		cause := damage(t, repo, retry.ID)
		damage(t, repo, last.ID)

		rescued, err := repo.RescueExpired(ctx, 10)
		require.NoError(t, err)
		require.Len(t, rescued, 1, "only the readable row is returned")
		require.Equal(t, fine.ID, rescued[0].ID)
		require.Equal(t, jobs.StatusPending, rescued[0].Status)
		for _, id := range []uuid.UUID{retry.ID, last.ID} {
			got := readStored(t, repo, id)
			require.Equal(t, jobs.StatusFailed, jobs.Status(got.status))
			require.Contains(t, got.error, "stored job cannot be read")
			require.Contains(t, got.error, cause)
			require.Contains(t, got.errors, "lease expired", "the lost attempt is still recorded")
			require.False(t, got.leased)
			require.True(t, got.finished)
		}
		cl := claimAll(t, repo, 10)
		require.Len(t, cl, 1)
		require.Equal(t, fine.ID, cl[0].ID)
	})
}

// TestSQLiteDamagedCheckpointColumns damages the new columns with raw SQL:
// a checkpoint that is not JSON comes back as stored (the handler's decode
// fails for that job only, as with a payload), and an output_seq that is
// not a number makes the row unreadable, so its claim fails it at once.
func TestSQLiteDamagedCheckpointColumns(t *testing.T) {
	t.Parallel()
	repo := testrepo.SQLite(t)
	ctx := t.Context()
	badCP, badSeq, good := newJob("k", 1), newJob("k", 2), newJob("k", 3)
	require.NoError(t, repo.Create(ctx, badCP, badSeq, good))
	_, err := repo.DB().ExecContext(ctx, "UPDATE jobs SET checkpoint = '{not json' WHERE id = ?", badCP.ID.String())
	require.NoError(t, err)
	_, err = repo.DB().ExecContext(ctx, "UPDATE jobs SET output_seq = 'many' WHERE id = ?", badSeq.ID.String())
	require.NoError(t, err)

	cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "w1", Limit: 10, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, cl, 2)
	for _, j := range cl {
		require.NotEqual(t, badSeq.ID, j.ID)
		if j.ID == badCP.ID {
			require.Equal(t, "{not json", string(j.Checkpoint))
		}
	}
	got := readStored(t, repo, badSeq.ID)
	require.Equal(t, jobs.StatusFailed, jobs.Status(got.status))
	require.Contains(t, got.error, "stored job cannot be read")
}
