package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		reported := make(chan struct{})
		cause := make(chan error, 1)
		r.Handle("long", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			if err := p.Report(0.25, "first quarter"); err != nil {
				return nil, err
			}
			close(reported)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil, ctx.Err()
		})
		ctx := t.Context()

		// Pending: canceled at once, even without a running runner.
		pending, err := r.Enqueue(ctx, "long", nil)
		require.NoError(t, err)
		c, err := r.Cancel(ctx, pending.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, c.Status)

		// Terminal: conflict; unknown: not found.
		_, err = r.Cancel(ctx, pending.ID)
		require.ErrorIs(t, err, jobs.ErrConflict)
		_, err = r.Cancel(ctx, uuid.Must(uuid.NewV7()))
		require.ErrorIs(t, err, jobs.ErrNotFound)

		// Running here, mid-progress: the handler's ctx ends with ErrCanceled
		// and the job ends canceled without a retry.
		start(t, r)
		j, err := r.Enqueue(ctx, "long", nil, jobs.WithMaxAttempts(3))
		require.NoError(t, err)
		recv(t, reported)
		_, err = r.Cancel(ctx, j.ID)
		require.NoError(t, err)
		require.ErrorIs(t, recv(t, cause), jobs.ErrCanceled)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusCanceled, final.Status)
		require.Equal(t, 1, final.Attempt)
		require.Equal(t, jobs.Progress{Fraction: 0.25, Message: "first quarter"}, final.Progress)
	})
}

// A handler that ignores the cancel and returns a result anyway: the user
// asked to cancel, so the job ends canceled and the result is not stored.
func TestCancelWinsOverAResultReturnedAfterIt(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		running := make(chan struct{})
		r.Handle("stubborn", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			close(running)
			<-ctx.Done()
			return json.RawMessage(`{"transcript":"done anyway"}`), nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "stubborn", nil)
		require.NoError(t, err)
		recv(t, running)
		_, err = r.Cancel(t.Context(), j.ID)
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusCanceled, final.Status)
		require.Empty(t, final.Result)
		require.Equal(t, "canceled", final.Error)
	})
}

// A handler has returned its result, but the result is not stored yet when
// Cancel comes (from this runner or from another one): Cancel returns nil,
// so the job must end canceled. Once the result is stored, Cancel is a
// conflict and the result stays.
func TestCancelAfterTheResultWasReturnedButNotStored(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		for _, from := range []string{"same runner", "other runner"} {
			held := &heldWrites{JobRepository: repo, arrived: make(chan struct{}, 1), release: make(chan struct{})}
			r := newRunner(t, held)
			r.Handle("quick", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				return json.RawMessage(`"done"`), nil
			})
			canceler := r
			if from == "other runner" {
				canceler = newRunner(t, repo)
			}
			stop := start(t, r)
			j, err := r.Enqueue(t.Context(), "quick", nil)
			require.NoError(t, err)
			recv(t, held.arrived)
			got, err := canceler.Cancel(t.Context(), j.ID)
			require.NoError(t, err, from)
			require.True(t, got.CancelRequested)
			close(held.release)
			final := await(t, r, j.ID)
			require.Equal(t, jobs.StatusCanceled, final.Status, "%s: Cancel returned nil", from)
			require.Empty(t, final.Result)

			_, err = canceler.Cancel(t.Context(), j.ID)
			require.ErrorIs(t, err, jobs.ErrConflict)
			require.NoError(t, stop())
		}

		// Stored first: Cancel is a conflict and the job keeps its result.
		r := newRunner(t, repo)
		r.Handle("quick", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return json.RawMessage(`"done"`), nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "quick", nil)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, j.ID).Status)
		_, err = r.Cancel(t.Context(), j.ID)
		require.ErrorIs(t, err, jobs.ErrConflict)
		require.Equal(t, jobs.StatusSucceeded, get(t, r, j.ID).Status)
	})
}

// A second Cancel of a canceled job is a conflict, also while the local
// attempt that stored the canceled outcome is still winding down (its hooks
// run before it leaves the running set).
func TestCancelOfACanceledJobIsAConflictWhileItsAttemptEnds(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		inHook, leave := make(chan struct{}), make(chan struct{})
		r := newRunner(t, repo, jobs.WithHooks(jobs.Hooks{OnCanceled: func(*jobs.Job) {
			close(inHook)
			<-leave
		}}))
		started := make(chan struct{})
		r.Handle("slow", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		start(t, r)
		defer close(leave)
		j, err := r.Enqueue(t.Context(), "slow", nil)
		require.NoError(t, err)
		recv(t, started)
		_, err = r.Cancel(t.Context(), j.ID)
		require.NoError(t, err)
		recv(t, inHook)
		require.Equal(t, jobs.StatusCanceled, get(t, r, j.ID).Status)
		_, err = r.Cancel(t.Context(), j.ID)
		require.ErrorIs(t, err, jobs.ErrConflict)
	})
}

// Cancel under caller deadlines of 0 to 3 ms: a nil error means the job is
// canceled, and (where the database runs in-process, so that a failed call
// cannot still commit later) an error means it is not.
func TestCancelUnderShortDeadlines(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		const n = 300
		producer := newRunner(t, repo)
		reqs := make([]jobs.EnqueueRequest, n)
		for i := range reqs {
			reqs[i] = jobs.EnqueueRequest{Kind: "k"}
		}
		js, err := producer.EnqueueMany(t.Context(), reqs...)
		require.NoError(t, err)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%13)*250*time.Microsecond)
					_, errs[i] = producer.Cancel(ctx, js[i].ID)
					cancel()
				}
			})
		}
		wg.Wait()
		_, pg := repo.(*jobsbun.Repository)
		pg = pg && repo.(*jobsbun.Repository).DB().Dialect().Name().String() == "pg"
		failed := 0
		for i, j := range js {
			got := get(t, producer, j.ID)
			if errs[i] == nil {
				require.Equal(t, jobs.StatusCanceled, got.Status, "Cancel returned nil")
				continue
			}
			failed++
			_, ok := errors.AsType[*jobs.Error](errs[i])
			require.True(t, ok, "%v is not a *jobs.Error", errs[i])
			if !pg {
				require.Equal(t, jobs.StatusPending, got.Status, "Cancel failed (%v) but the job was canceled", errs[i])
			}
		}
		t.Logf("%d of %d cancels failed on their deadline", failed, n)
	})
}
