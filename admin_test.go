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
	"github.com/stretchr/testify/require"
)

// blocker is a handler that reports each start and blocks until its
// context ends, then reports the cause.
type blocker struct {
	started chan uuid.UUID
	causes  chan error
}

func newBlocker(n int) *blocker {
	return &blocker{started: make(chan uuid.UUID, n), causes: make(chan error, n)}
}

func (b *blocker) handle(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
	b.started <- j.ID
	<-ctx.Done()
	b.causes <- context.Cause(ctx)
	return nil, ctx.Err()
}

func TestCancelManyStopsLocalHandlersAtOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		// A refresh interval longer than the test: only the local cancel
		// can stop the handlers in time.
		r := newRunner(t, repo, jobs.WithLeaseDuration(time.Hour), jobs.WithRefreshInterval(time.Hour))
		b := newBlocker(3)
		r.Handle("long", b.handle)
		ctx := t.Context()
		start(t, r)
		var running []uuid.UUID
		for range 3 {
			j, err := r.Enqueue(ctx, "long", nil, jobs.WithMaxAttempts(5))
			require.NoError(t, err)
			running = append(running, j.ID)
		}
		later, err := r.Enqueue(ctx, "long", nil, jobs.WithRunAt(time.Now().Add(time.Hour)))
		require.NoError(t, err)
		other, err := r.Enqueue(ctx, "long", nil, jobs.InQueue("other"), jobs.WithRunAt(time.Now().Add(time.Hour)))
		require.NoError(t, err)
		for range 3 {
			recv(t, b.started)
		}

		n, err := r.CancelMany(ctx, jobs.ListQuery{Queue: "default", Limit: 2})
		require.NoError(t, err)
		require.Equal(t, 4, n, "three running and one pending, in batches of two")
		for range 3 {
			require.ErrorIs(t, recv(t, b.causes), jobs.ErrCanceled)
		}
		for _, id := range running {
			j := await(t, r, id)
			require.Equal(t, jobs.StatusCanceled, j.Status, "canceled, not retried")
			require.Equal(t, 1, j.Attempt)
		}
		require.Equal(t, jobs.StatusCanceled, get(t, r, later.ID).Status)
		require.Equal(t, jobs.StatusPending, get(t, r, other.ID).Status, "another queue is untouched")
	})
}

func TestCancelManyFromAnotherProcess(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		b := newBlocker(1)
		r.Handle("long", b.handle)
		start(t, r)
		j, err := r.Enqueue(t.Context(), "long", nil)
		require.NoError(t, err)
		recv(t, b.started)

		// An operator's process: its own repository, a runner without
		// handlers.
		admin := newRunner(t, reopen(t, repo))
		n, err := admin.CancelMany(t.Context(), jobs.ListQuery{Kind: "long", Statuses: []jobs.Status{jobs.StatusRunning}})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.ErrorIs(t, recv(t, b.causes), jobs.ErrCanceled, "the owner stops it as after Cancel")
		require.Equal(t, jobs.StatusCanceled, await(t, r, j.ID).Status)
	})
}

func TestRetryRunsAgainWithMetadataInHandlerAndHooks(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		var mu sync.Mutex
		seen := map[string]map[string]string{}
		record := func(name string) func(*jobs.Job) {
			return func(j *jobs.Job) {
				mu.Lock()
				defer mu.Unlock()
				seen[name] = j.Metadata
			}
		}
		// Outcome hooks run after the outcome is stored, so Await may
		// return first: the test waits for the last one.
		succeeded := make(chan struct{})
		onSucceeded := func(j *jobs.Job) {
			record("succeeded")(j)
			close(succeeded)
		}
		r := newRunner(t, repo, jobs.WithHooks(jobs.Hooks{OnStarted: record("started"), OnFailed: record("failed"), OnSucceeded: onSucceeded}))
		calls := 0
		r.Handle("flaky", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			seen["handler"] = j.Metadata
			if calls == 1 {
				return nil, jobs.Permanent(errors.New("first run fails"))
			}
			return json.RawMessage(`"done"`), nil
		})
		start(t, r)
		ctx := t.Context()
		j, err := r.Enqueue(ctx, "flaky", nil,
			jobs.WithMetadata(map[string]string{"request_id": "r-1", "user": "ann"}),
			jobs.WithMetadata(map[string]string{"user": "bob"}), jobs.WithMetadata(nil))
		require.NoError(t, err)
		want := map[string]string{"request_id": "r-1", "user": "bob"}
		require.Equal(t, want, j.Metadata, "options merge, the later value wins")
		require.Equal(t, jobs.StatusFailed, await(t, r, j.ID).Status)

		_, err = r.Retry(ctx, uuid.Must(uuid.NewV7()))
		require.ErrorIs(t, err, jobs.ErrNotFound)
		got, err := r.Retry(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, want, got.Metadata)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, 1, final.Attempt, "a fresh budget")
		require.Len(t, final.Errors, 1, "the first run's error is kept")
		_, err = r.Retry(ctx, j.ID)
		require.ErrorIs(t, err, jobs.ErrConflict, "a succeeded job is not retried")

		select {
		case <-succeeded:
		case <-time.After(30 * time.Second):
			t.Fatal("OnSucceeded never ran")
		}
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, 2, calls)
		for _, name := range []string{"handler", "started", "failed", "succeeded"} {
			require.Equal(t, want, seen[name], name)
		}
	})
}

func TestRetryManyEndsWhileRetriedJobsFailAgain(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		var mu sync.Mutex
		runs := map[uuid.UUID]int{}
		r.Handle("bad", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
			mu.Lock()
			runs[j.ID]++
			mu.Unlock()
			return nil, jobs.Permanent(errors.New("always"))
		})
		start(t, r)
		ctx := t.Context()
		var ids []uuid.UUID
		for range 6 {
			j, err := r.Enqueue(ctx, "bad", nil)
			require.NoError(t, err)
			ids = append(ids, j.ID)
		}
		for _, id := range ids {
			require.Equal(t, jobs.StatusFailed, await(t, r, id).Status)
		}
		// Batches of one: the runner fails each retried job again while
		// the sweep goes on, and the sweep still ends, retrying each once.
		n, err := r.RetryMany(ctx, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, 6, n)
		for _, id := range ids {
			requireStatus(t, r, id, jobs.StatusFailed)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			require.Equal(t, 2, runs[id], "job %s ran once more", id)
		}
	})
}

func TestDeleteAndDeleteMany(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) { return nil, nil })
		ctx := t.Context()
		pending, err := r.Enqueue(ctx, "k", nil)
		require.NoError(t, err)
		require.ErrorIs(t, r.Delete(ctx, pending.ID), jobs.ErrConflict)
		start(t, r)
		var done []uuid.UUID
		for range 3 {
			j, err := r.Enqueue(ctx, "k", nil)
			require.NoError(t, err)
			done = append(done, j.ID)
		}
		for _, id := range append(done, pending.ID) {
			await(t, r, id)
		}
		require.NoError(t, r.Delete(ctx, pending.ID))
		_, err = r.Get(ctx, pending.ID)
		require.ErrorIs(t, err, jobs.ErrNotFound)
		require.ErrorIs(t, r.Delete(ctx, pending.ID), jobs.ErrNotFound)
		n, err := r.DeleteMany(ctx, jobs.ListQuery{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		s, err := r.Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, s.Total)
	})
}

func TestAdminManyRefusesBadFilters(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	bad := jobs.ListQuery{Limit: 5000}
	for name, op := range map[string]func(context.Context, jobs.ListQuery) (int, error){
		"retry": r.RetryMany, "cancel": r.CancelMany, "delete": r.DeleteMany,
	} {
		n, err := op(t.Context(), bad)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, name)
		require.Zero(t, n, name)
		e, ok := errors.AsType[*jobs.Error](err)
		require.True(t, ok)
		require.Equal(t, name+" many", e.Op, "the error names the operation")
	}
}
