package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// parts returns n requests of kind "part" with payloads 1 to n.
func parts(n int) []jobs.EnqueueRequest {
	reqs := make([]jobs.EnqueueRequest, n)
	for i := range reqs {
		reqs[i] = jobs.EnqueueRequest{Kind: "part", Payload: i + 1}
	}
	return reqs
}

// handleParts registers kind "part": a part whose number is a multiple of
// fail fails permanently; the others return their number times 10.
func handleParts(r *jobs.Runner, fail int) {
	jobs.Handle(r, "part", func(ctx context.Context, j *jobs.Job, n int, _ jobs.Reporter) (int, error) {
		if n%fail == 0 {
			return 0, jobs.Permanent(fmt.Errorf("part %d is broken", n))
		}
		return n * 10, nil
	})
}

// A batch with a callback: its handler runs once, after every job of the
// batch has ended, and reads their outcomes through DependsOn.
func TestRunnerBatchCallback(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	handleParts(r, 3)
	calls := make(chan struct{}, 10)
	jobs.Handle(r, "report", func(ctx context.Context, j *jobs.Job, title string, _ jobs.Reporter) (string, error) {
		calls <- struct{}{}
		var ok, failed []string
		sum := 0
		for _, id := range j.DependsOn {
			dep, err := r.Get(ctx, id)
			if err != nil {
				return "", err
			}
			switch dep.Status {
			case jobs.StatusSucceeded:
				var n int
				if err := json.Unmarshal(dep.Result, &n); err != nil {
					return "", jobs.Permanent(err)
				}
				sum += n
				ok = append(ok, fmt.Sprint(n))
			default:
				failed = append(failed, string(dep.Status)+": "+dep.Error)
			}
		}
		return fmt.Sprintf("%s: sum %d of %s; %s", title, sum, strings.Join(ok, "+"), strings.Join(failed, ", ")), nil
	})
	batch, js, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Kind: "report", Payload: "parts"}, parts(7)...)
	require.NoError(t, err)
	require.Len(t, js, 7)
	require.True(t, batch.Batch)
	require.True(t, batch.RunAnyway)
	require.Equal(t, jobs.StatusWaiting, batch.Status)
	require.Equal(t, ids(js), batch.DependsOn)
	for _, j := range js {
		require.Equal(t, jobs.StatusPending, j.Status)
		require.False(t, j.Batch)
	}
	start(t, r)
	got, final, err := jobs.AwaitResult[string](t.Context(), r, batch.ID)
	require.NoError(t, err)
	require.Equal(t, "parts: sum 190 of 10+20+40+50+70; failed: part 3 is broken, failed: part 6 is broken", got)
	require.Equal(t, 1, final.Attempt)
	for _, j := range js {
		require.False(t, get(t, r, j.ID).FinishedAt.After(final.StartedAt), "the callback started after every job ended")
	}
	recv(t, calls)
	require.Empty(t, calls, "the callback ran once")
}

// ids returns the IDs of js.
func ids(js []*jobs.Job) []uuid.UUID {
	out := make([]uuid.UUID, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

// A batch without a callback ends by itself: succeeded when every job did,
// failed, with how many did not, otherwise. No handler is needed for it.
func TestRunnerBatchEndsByItself(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	handleParts(r, 4)
	good, goodJobs, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{}, parts(3)...)
	require.NoError(t, err)
	require.Equal(t, jobs.BatchKind, good.Kind)
	bad, _, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Options: []jobs.EnqueueOption{jobs.InQueue("reports")}}, parts(9)...)
	require.NoError(t, err)
	require.Equal(t, "reports", bad.Queue)
	start(t, r)

	got := await(t, r, good.ID)
	require.Equal(t, jobs.StatusSucceeded, got.Status)
	require.Equal(t, 1.0, got.Progress.Fraction)
	require.Zero(t, got.Attempt, "a batch without a callback never runs")
	for _, j := range goodJobs {
		require.False(t, get(t, r, j.ID).FinishedAt.After(got.FinishedAt))
	}
	got = await(t, r, bad.ID)
	require.Equal(t, jobs.StatusFailed, got.Status)
	require.Equal(t, "2 of 9 jobs did not succeed", got.Error)
	require.Zero(t, got.Attempt)
	_, _, err = jobs.AwaitResult[json.RawMessage](t.Context(), r, bad.ID)
	require.ErrorIs(t, err, jobs.ErrFailed)
}

// Watching a batch shows the progress of its jobs together, rising as they
// report and end.
func TestRunnerBatchWatchProgress(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	steps := []chan float64{make(chan float64), make(chan float64)}
	jobs.Handle(r, "step", func(ctx context.Context, j *jobs.Job, i int, p jobs.Reporter) (struct{}, error) {
		for f := range steps[i] {
			if err := p.Report(f, "working"); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	batch, _, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{},
		jobs.EnqueueRequest{Kind: "step", Payload: 0}, jobs.EnqueueRequest{Kind: "step", Payload: 1})
	require.NoError(t, err)
	start(t, r)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	snaps := make(chan jobs.Snapshot)
	go func() {
		defer close(snaps)
		for s, err := range r.Watch(ctx, batch.ID) {
			if err != nil {
				return
			}
			select {
			case snaps <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	last := -1.0
	// until reads snapshots until the batch's progress is want, checking
	// that it never goes down.
	until := func(want float64) jobs.Snapshot {
		t.Helper()
		for {
			s, ok := <-snaps
			require.True(t, ok, "Watch stopped before the progress reached %v", want)
			require.GreaterOrEqual(t, s.Progress, last-1e-9, "the batch's progress never goes down")
			require.Empty(t, s.Message)
			last = s.Progress
			if math.Abs(s.Progress-want) < 1e-9 {
				return s
			}
			require.Less(t, s.Progress, want, "the progress passed %v", want)
		}
	}
	s := until(0)
	require.Equal(t, jobs.StatusWaiting, s.Status)
	steps[0] <- 0.5
	until(0.25)
	steps[1] <- 0.2
	until(0.35)
	steps[1] <- 0.6
	until(0.55)
	close(steps[0]) // the first job ends: it counts as 1
	until(0.8)
	close(steps[1])
	s = until(1)
	for s.Status != jobs.StatusSucceeded {
		s = until(1)
	}
}

// Canceling a batch through the runner cancels its jobs: the handlers
// running here are stopped, the jobs not started are canceled.
func TestRunnerBatchCancel(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t), jobs.WithConcurrency(4))
	started := make(chan uuid.UUID, 2)
	stopped := make(chan error, 2)
	r.Handle("slow", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		started <- j.ID
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	r.Handle("later", noop)
	ran := make(chan struct{}, 1)
	r.Handle("report", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		ran <- struct{}{}
		return nil, nil
	})
	batch, js, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Kind: "report"},
		jobs.EnqueueRequest{Kind: "slow"},
		jobs.EnqueueRequest{Kind: "slow"},
		jobs.EnqueueRequest{Kind: "later", After: []int{0}},
	)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusWaiting, js[2].Status)
	start(t, r)
	require.ElementsMatch(t, ids(js[:2]), []uuid.UUID{recv(t, started), recv(t, started)})

	got, err := r.Cancel(t.Context(), batch.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, got.Status)
	require.Equal(t, jobs.StatusCanceled, get(t, r, js[2].ID).Status, "a job of the batch that waited is canceled at once")
	for range 2 {
		require.ErrorIs(t, recv(t, stopped), jobs.ErrCanceled)
	}
	for _, j := range js {
		require.Equal(t, jobs.StatusCanceled, await(t, r, j.ID).Status)
	}
	require.Empty(t, ran, "the callback of a canceled batch never runs")
	_, err = r.Cancel(t.Context(), batch.ID)
	require.ErrorIs(t, err, jobs.ErrConflict)
}

// A batch needs jobs, runs after them alone, and takes no job of another
// batch; a refused batch stores nothing.
func TestRunnerBatchInvalid(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	r.Handle("k", noop)
	held, _, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{},
		jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithUniqueKey("u")}})
	require.NoError(t, err)
	for name, call := range map[string]func() (*jobs.Job, []*jobs.Job, error){
		"no job": func() (*jobs.Job, []*jobs.Job, error) {
			return r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Kind: "k"})
		},
		"After set": func() (*jobs.Job, []*jobs.Job, error) {
			return r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Kind: "k", After: []int{0}}, jobs.EnqueueRequest{Kind: "k"})
		},
		"a job of another batch": func() (*jobs.Job, []*jobs.Job, error) {
			// The request's unique key is held by a job of the first
			// batch: the new batch would take it.
			return r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{},
				jobs.EnqueueRequest{Kind: "k"}, jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithUniqueKey("u")}})
		},
	} {
		b, js, err := call()
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, name)
		require.Nil(t, b, name)
		require.Nil(t, js, name)
	}
	s, err := r.Stats(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, s.Total, "nothing more is stored")
	require.Equal(t, jobs.StatusWaiting, get(t, r, held.ID).Status)
}

// Retry of a batch whose jobs failed runs them again, then its callback:
// the flow of a user who retries a file whose chunks failed.
func TestRunnerRetryBatch(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	var mended atomic.Bool // parts 2 and 4 fail until then
	jobs.Handle(r, "part", func(ctx context.Context, j *jobs.Job, n int, _ jobs.Reporter) (int, error) {
		if !mended.Load() && n%2 == 0 {
			return 0, jobs.Permanent(fmt.Errorf("part %d is broken", n))
		}
		return n, nil
	})
	jobs.Handle(r, "report", func(ctx context.Context, j *jobs.Job, _ string, _ jobs.Reporter) (int, error) {
		return sumResults(ctx, r, j.DependsOn)
	})
	batch, js, err := r.EnqueueBatch(t.Context(), jobs.EnqueueRequest{Kind: "report", Payload: "file"}, parts(4)...)
	require.NoError(t, err)
	start(t, r)
	_, final, err := jobs.AwaitResult[int](t.Context(), r, batch.ID)
	require.ErrorIs(t, err, jobs.ErrFailed)
	require.Equal(t, jobs.StatusFailed, final.Status)

	mended.Store(true)
	again, err := r.Retry(t.Context(), batch.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusWaiting, again.Status)
	require.InDelta(t, 0.5, again.Progress.Fraction, 1e-9, "parts 1 and 3 succeeded")
	sum, final, err := jobs.AwaitResult[int](t.Context(), r, batch.ID)
	require.NoError(t, err)
	require.Equal(t, 10, sum)
	require.Equal(t, 1, final.Attempt)
	for _, j := range js {
		got, err := r.Get(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusSucceeded, got.Status)
	}
}
