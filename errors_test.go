package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
)

func TestErrorIsMatchesSentinelByCode(t *testing.T) {
	t.Parallel()
	sentinels := []jobs.Code{
		jobs.ErrNotFound, jobs.ErrInvalidArgument, jobs.ErrTooLarge, jobs.ErrConflict,
		jobs.ErrUnknownKind, jobs.ErrCanceled, jobs.ErrTimeout, jobs.ErrFailed,
		jobs.ErrLeaseLost, jobs.ErrClosed, jobs.ErrUnavailable, jobs.ErrOutcomeUnknown,
	}
	for _, s := range sentinels {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			id := uuid.Must(uuid.NewV7())
			err := fmt.Errorf("outer: %w", &jobs.Error{Code: s, Op: "get", JobID: id, Msg: "detail", Err: errors.New("cause")})
			require.ErrorIs(t, err, s)
			for _, other := range sentinels {
				if other != s {
					assert.NotErrorIs(t, err, other)
				}
			}
			e, ok := errors.AsType[*jobs.Error](err)
			require.True(t, ok)
			assert.Equal(t, id, e.JobID)
			assert.Equal(t, s, jobs.CodeOf(err))
		})
	}
}

func TestErrorMessageAndUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk on fire")
	id := uuid.MustParse("0190a8b0-0000-7000-8000-000000000001")
	err := &jobs.Error{Code: jobs.ErrUnavailable, Op: "claim", JobID: id, Msg: "storage unavailable", Err: cause}
	require.Equal(t, "jobs: claim 0190a8b0-0000-7000-8000-000000000001: storage unavailable: disk on fire", err.Error())
	require.ErrorIs(t, err, cause)
	require.Equal(t, "jobs: not found", jobs.ErrNotFound.Error())
	// A detailed error is not a code: it must not match other detailed errors.
	require.NotErrorIs(t, err, &jobs.Error{Code: jobs.ErrUnavailable, Op: "claim"})
	require.Equal(t, "jobs: outcome unknown", jobs.ErrOutcomeUnknown.Error())
}

func TestCodeOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, jobs.Code(""), jobs.CodeOf(nil))
	require.Equal(t, jobs.Code("internal"), jobs.CodeOf(errors.New("plain")))
	require.Equal(t, jobs.ErrConflict, jobs.CodeOf(fmt.Errorf("wrapped: %w", jobs.ErrConflict)))
}

func TestPermanentAndRetryAfterWrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("bad input file")
	require.NoError(t, jobs.Permanent(nil))
	require.NoError(t, jobs.RetryAfter(time.Second, nil))
	p := jobs.Permanent(cause)
	require.ErrorIs(t, p, cause)
	require.Equal(t, cause.Error(), p.Error())
	r := jobs.RetryAfter(-time.Second, cause)
	require.ErrorIs(t, r, cause)
	require.Equal(t, cause.Error(), r.Error())
}

func TestEndedContextIsAnErrorOfThePackage(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		j, err := r.Enqueue(t.Context(), "k", nil) // never runs: no Run
		require.NoError(t, err)
		// Repositories promise that the error matches ctx.Err(); the
		// runner's own checks match the cause too, but that is not asserted.
		ends := map[string]func() context.Context{
			"canceled": func() context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			"expired": func() context.Context {
				ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
				t.Cleanup(cancel)
				return ctx
			},
			"canceled with cause": func() context.Context {
				ctx, cancel := context.WithCancelCause(t.Context())
				cancel(errors.New("caller gave up"))
				return ctx
			},
		}
		calls := map[string]func(ctx context.Context) error{
			"Watch": func(ctx context.Context) error {
				for _, err := range r.Watch(ctx, j.ID) {
					return err
				}
				return nil
			},
			"Await": func(ctx context.Context) error { _, err := r.Await(ctx, j.ID); return err },
			"AwaitResult": func(ctx context.Context) error {
				_, _, err := jobs.AwaitResult[int](ctx, r, j.ID)
				return err
			},
			"Get":     func(ctx context.Context) error { _, err := r.Get(ctx, j.ID); return err },
			"List":    func(ctx context.Context) error { _, err := r.List(ctx, jobs.ListQuery{}); return err },
			"Enqueue": func(ctx context.Context) error { _, err := r.Enqueue(ctx, "k", nil); return err },
			"EnqueueMany": func(ctx context.Context) error {
				_, err := r.EnqueueMany(ctx, jobs.EnqueueRequest{Kind: "k"})
				return err
			},
			"Cancel": func(ctx context.Context) error { _, err := r.Cancel(ctx, j.ID); return err },
		}
		for end, newCtx := range ends {
			for name, call := range calls {
				ctx := newCtx()
				err := call(ctx)
				_, ok := errors.AsType[*jobs.Error](err)
				assert.True(t, ok, "%s, %s: %T %v is not a *jobs.Error", name, end, err, err)
				assert.ErrorIs(t, err, ctx.Err(), "%s, %s", name, end)
				assert.Equal(t, jobs.ErrUnavailable, jobs.CodeOf(err), "%s, %s", name, end)
			}
		}
		got, err := r.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusPending, got.Status, "no call with an ended context changed the job")
		page, err := r.List(t.Context(), jobs.ListQuery{})
		require.NoError(t, err)
		require.Len(t, page.Jobs, 1, "no call with an ended context created a job")
	})
}
