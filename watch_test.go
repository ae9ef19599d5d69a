package jobs_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// collect gathers a watch stream, checking that Seq increases.
func collect(t *testing.T, r *jobs.Runner, ctx context.Context, id uuid.UUID, each func(jobs.Snapshot)) []jobs.Snapshot {
	t.Helper()
	var out []jobs.Snapshot
	for s, err := range r.Watch(ctx, id) {
		require.NoError(t, err)
		if len(out) > 0 {
			require.Greater(t, s.Seq, out[len(out)-1].Seq)
		}
		out = append(out, s)
		if each != nil {
			each(s)
		}
	}
	return out
}

func TestWatchFollowsLocalProgressToTheEnd(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		step := make(chan struct{})
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			for i := 1; i <= 3; i++ {
				<-step
				if err := p.Report(float64(i)/4, "step"); err != nil {
					return nil, err
				}
			}
			<-step
			return json.RawMessage(`"r"`), nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		var seen []float64
		snaps := collect(t, r, t.Context(), j.ID, func(s jobs.Snapshot) {
			if s.Status == jobs.StatusRunning {
				seen = append(seen, s.Progress)
				// The handler makes one step per observed state, so the
				// watcher must see every value.
				select {
				case step <- struct{}{}:
				case <-time.After(20 * time.Second):
					t.Error("handler did not take the step")
				}
			}
		})
		last := snaps[len(snaps)-1]
		require.Equal(t, jobs.StatusSucceeded, last.Status)
		require.Equal(t, 1.0, last.Progress)
		require.Equal(t, []float64{0, 0.25, 0.5, 0.75}, seen)
	})
}

func TestSlowWatcherNeverBlocksTheHandlerAndGetsTheFinalValue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		handlerDone := make(chan struct{})
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			defer close(handlerDone)
			for i := 1; i <= 10000; i++ {
				if err := p.Report(float64(i)/10000, "fast"); err != nil {
					return nil, err
				}
			}
			return nil, nil
		})
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		start(t, r)
		var snaps []jobs.Snapshot
		snaps = collect(t, r, t.Context(), j.ID, func(s jobs.Snapshot) {
			if len(snaps) == 0 {
				<-handlerDone // the consumer stalls; the handler must still finish
			}
			snaps = append(snaps, s)
		})
		require.Less(t, len(snaps), 100, "a slow watcher skips intermediate values")
		last := snaps[len(snaps)-1]
		require.Equal(t, jobs.StatusSucceeded, last.Status)
		require.Equal(t, 1.0, last.Progress)
		require.Equal(t, "fast", last.Message)
	})
}

func TestWatchFromAnotherRunnerPolls(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		worker := newRunner(t, repo)
		proceed := make(chan struct{})
		worker.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			if err := p.Report(0.5, "half way"); err != nil {
				return nil, err
			}
			<-proceed
			return nil, nil
		})
		start(t, worker)
		watcher := newRunner(t, reopen(t, repo)) // no handlers, never runs the job
		j, err := watcher.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		snaps := collect(t, watcher, t.Context(), j.ID, func(s jobs.Snapshot) {
			if s.Status == jobs.StatusRunning && s.Progress == 0.5 {
				close(proceed)
			}
		})
		require.Contains(t, []jobs.Status{jobs.StatusPending, jobs.StatusRunning}, snaps[0].Status)
		last := snaps[len(snaps)-1]
		require.Equal(t, jobs.StatusSucceeded, last.Status)
		require.Equal(t, "half way", last.Message)
	})
}

func TestWatchErrors(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		var errs []error
		for s, err := range r.Watch(t.Context(), uuid.Must(uuid.NewV7())) {
			require.Zero(t, s)
			errs = append(errs, err)
		}
		require.Len(t, errs, 1)
		require.ErrorIs(t, errs[0], jobs.ErrNotFound)

		j, err := r.Enqueue(t.Context(), "k", nil) // never runs: no Run
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errs = nil
		for s, err := range r.Watch(ctx, j.ID) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			require.Equal(t, jobs.StatusPending, s.Status)
			cancel()
		}
		require.Len(t, errs, 1)
		require.ErrorIs(t, errs[0], context.Canceled)

		_, err = r.Await(ctx, j.ID)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestAwaitResultOfCanceledJob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		r.Handle("k", noop)
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		_, err = r.Cancel(t.Context(), j.ID)
		require.NoError(t, err)
		_, final, err := jobs.AwaitResult[int](t.Context(), r, j.ID)
		require.ErrorIs(t, err, jobs.ErrCanceled)
		require.Equal(t, jobs.StatusCanceled, final.Status)
	})
}

// slowGetRepo lets a number of Get calls through once armed; the ones after
// them block until their ctx ends, as on a database that stopped answering.
type slowGetRepo struct {
	jobs.JobRepository
	armed  atomic.Bool
	passes atomic.Int32 // Get calls still let through once armed
}

func (s *slowGetRepo) Get(ctx context.Context, id uuid.UUID) (*jobs.Job, error) {
	if s.armed.Load() && s.passes.Add(-1) < 0 {
		select {
		case <-ctx.Done():
			return nil, &jobs.Error{Code: jobs.ErrUnavailable, Op: "get", Err: ctx.Err()}
		case <-time.After(5 * time.Second): // a bound for the test, not a repository rule
		}
	}
	return s.JobRepository.Get(ctx, id)
}

func TestAwaitKeepsTheCallersDeadline(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		slow := &slowGetRepo{JobRepository: repo}
		r := newRunner(t, slow)
		r.Handle("k", noop)
		j, err := r.Enqueue(t.Context(), "k", nil) // never runs: no Run
		require.NoError(t, err)
		_, err = r.Cancel(t.Context(), j.ID)
		require.NoError(t, err)
		// Watch's read sees the job finished; Await's final read hangs.
		slow.passes.Store(1)
		slow.armed.Store(true)
		const deadline = 200 * time.Millisecond
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		begin := time.Now()
		got, err := r.Await(ctx, j.ID)
		took := time.Since(begin)
		require.Nil(t, got)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, jobs.ErrUnavailable)
		require.Less(t, took, deadline+time.Second, "Await outlived its caller's deadline")
	})
}

func TestJobSnapshot(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	j := &jobs.Job{ID: id, Kind: "k", Status: jobs.StatusFailed, Attempt: 3, Error: "boom",
		Progress: jobs.Progress{Fraction: 0.5, Message: "half"}}
	require.Equal(t, jobs.Snapshot{ID: id, Status: jobs.StatusFailed, Progress: 0.5, Message: "half",
		Attempt: 3, Error: "boom"}, j.Snapshot())
}
