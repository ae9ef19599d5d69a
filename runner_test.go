package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

type addIn struct{ A, B int }

func noop(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) { return nil, nil }

func TestRunnerRunsTypedHandler(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		jobs.Handle(r, "add", func(ctx context.Context, j *jobs.Job, in addIn, p jobs.Reporter) (int, error) {
			if err := p.Report(0.5, "half"); err != nil {
				return 0, err
			}
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
	})
}

func TestTypedHandlerBadPayloadFailsPermanently(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		jobs.Handle(r, "add", func(ctx context.Context, j *jobs.Job, in addIn, p jobs.Reporter) (int, error) {
			return in.A + in.B, nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "add", json.RawMessage(`"not an object"`), jobs.WithMaxAttempts(5))
		require.NoError(t, err)
		_, final, err := jobs.AwaitResult[int](t.Context(), r, j.ID)
		require.ErrorIs(t, err, jobs.ErrFailed)
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Equal(t, 1, final.Attempt, "a bad payload is not retried")
		require.Contains(t, final.Error, `payload of kind "add" does not decode`)
	})
}

func TestHandlePanicsOnProgrammerErrors(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	r.Handle("k", noop)
	tests := []struct {
		name string
		f    func()
	}{
		{"empty kind", func() { r.Handle("", noop) }},
		{"nil handler", func() { r.Handle("x", nil) }},
		{"nil typed handler", func() {
			jobs.Handle[int, int](r, "y", nil)
		}},
		{"duplicate", func() { r.Handle("k", noop) }},
		{"negative timeout", func() { r.Handle("z", noop, jobs.WithKindTimeout(-1)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { require.Panics(t, tt.f) })
	}
	stop := start(t, r)
	require.Eventually(t, func() bool {
		return func() (p bool) {
			defer func() { p = recover() != nil }()
			r.Handle("late", noop)
			return false
		}()
	}, 5*time.Second, time.Millisecond, "Handle after Run must panic")
	require.NoError(t, stop())
}

func TestRunTwiceAndWithoutHandlers(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- r.Run(ctx) }()
	}
	// One of the two calls runs; the other returns at once.
	require.ErrorIs(t, recv(t, errc), jobs.ErrConflict)
	cancel()
	require.NoError(t, recv(t, errc), "a runner without handlers runs maintenance only and stops cleanly")
}

func TestRunnerClaimsOnlyItsKinds(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithAllowUnknownKinds())
		r.Handle("mine", noop)
		start(t, r)
		other, err := r.Enqueue(t.Context(), "theirs", nil)
		require.NoError(t, err)
		mine, err := r.Enqueue(t.Context(), "mine", nil)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, mine.ID).Status)
		require.Equal(t, jobs.StatusPending, get(t, r, other.ID).Status)
	})
}

func TestRunnerQueues(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithQueues("fast"))
		r.Handle("k", noop)
		start(t, r)
		slow, err := r.Enqueue(t.Context(), "k", nil, jobs.InQueue("slow"))
		require.NoError(t, err)
		fast, err := r.Enqueue(t.Context(), "k", nil, jobs.InQueue("fast"))
		require.NoError(t, err)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, fast.ID).Status)
		require.Equal(t, jobs.StatusPending, get(t, r, slow.ID).Status)
	})
}

func TestRunnerPriorityOrder(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithConcurrency(1))
		var (
			mu    sync.Mutex
			order []int
		)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			mu.Lock()
			order = append(order, j.Priority)
			mu.Unlock()
			return nil, nil
		})
		var last *jobs.Job
		for _, prio := range []int{1, 5, -2, 3, 0} {
			j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithPriority(prio))
			require.NoError(t, err)
			last = j
		}
		start(t, r)
		await(t, r, last.ID)
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 5 }, 10*time.Second, time.Millisecond)
		require.Equal(t, []int{5, 3, 1, 0, -2}, order)
	})
}

func TestRunnerDelayedJobWaitsAndWakesWithoutPolling(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		// With an hour-long poll interval only the runner's own wake-ups can
		// start the jobs in time.
		r := newRunner(t, repo, jobs.WithPollInterval(time.Hour))
		started := make(chan time.Time, 2)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			started <- time.Now()
			return nil, nil
		})
		start(t, r)
		now, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		recv(t, started)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, now.ID).Status)

		const delay = 200 * time.Millisecond
		j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithRunAt(time.Now().Add(delay)))
		require.NoError(t, err)
		at := recv(t, started)
		require.False(t, at.Before(j.RunAt), "started %v before its run-at %v", at, j.RunAt)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, j.ID).Status)
	})
}

func TestRunnerWakesForEveryDelayedJob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		// One wake timer serves every delayed job: after the first one
		// starts, it must still wake for the next, while a thousand jobs
		// wait an hour. Only the timer can start them: the poll is hourly.
		r := newRunner(t, repo, jobs.WithPollInterval(time.Hour))
		started := make(chan uuid.UUID, 2)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			started <- j.ID
			return nil, nil
		})
		start(t, r)
		later := make([]jobs.EnqueueRequest, 1000)
		for i := range later {
			later[i] = jobs.EnqueueRequest{Kind: "k", Options: []jobs.EnqueueOption{jobs.WithRunAt(time.Now().Add(time.Hour))}}
		}
		_, err := r.EnqueueMany(t.Context(), later...)
		require.NoError(t, err)
		var want []*jobs.Job
		for _, d := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond} {
			j, err := r.Enqueue(t.Context(), "k", nil, jobs.WithRunAt(time.Now().Add(d)))
			require.NoError(t, err)
			want = append(want, j)
		}
		for _, j := range want {
			require.Equal(t, j.ID, recv(t, started))
			require.False(t, time.Now().Before(j.RunAt), "started before its run-at %v", j.RunAt)
		}
	})
}

func TestShutdownFinishesWithinGraceAndReleasesTheRest(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r1 := newRunner(t, repo, jobs.WithShutdown(time.Second, 0))
		running := make(chan string, 2)
		finishQuick := make(chan struct{})
		stubbornCause := make(chan error, 1)
		r1.Handle("quick", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			running <- "quick"
			<-finishQuick // ignores ctx, but returns within grace
			return json.RawMessage(`"done"`), nil
		})
		r1.Handle("stubborn", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			running <- "stubborn"
			<-ctx.Done()
			stubbornCause <- context.Cause(ctx)
			return nil, ctx.Err()
		})
		stop := start(t, r1)
		quick, err := r1.Enqueue(t.Context(), "quick", nil)
		require.NoError(t, err)
		stubborn, err := r1.Enqueue(t.Context(), "stubborn", nil)
		require.NoError(t, err)
		recv(t, running)
		recv(t, running)

		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		close(finishQuick)
		require.NoError(t, recv(t, stopped))
		require.ErrorIs(t, recv(t, stubbornCause), jobs.ErrClosed)

		q := get(t, r1, quick.ID)
		require.Equal(t, jobs.StatusSucceeded, q.Status)
		require.JSONEq(t, `"done"`, string(q.Result))
		s := get(t, r1, stubborn.ID)
		require.Equal(t, jobs.StatusPending, s.Status, "released at once, not left to the rescuer")
		require.Equal(t, 0, s.Attempt, "the interrupted attempt is not counted")
		require.Empty(t, s.Errors)

		// A second runner on the same database takes the released job over.
		r2 := newRunner(t, reopen(t, repo))
		r2.Handle("stubborn", noop)
		start(t, r2)
		s = await(t, r2, stubborn.ID)
		require.Equal(t, jobs.StatusSucceeded, s.Status)
		require.Equal(t, 1, s.Attempt)
	})
}

func TestShutdownDoesNotHangOnHandlerIgnoringContext(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithShutdown(50*time.Millisecond, 100*time.Millisecond))
		running := make(chan struct{})
		release := make(chan struct{})
		returned := make(chan struct{})
		r.Handle("zombie", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			close(running)
			<-release // ignores ctx entirely
			defer close(returned)
			return nil, nil
		})
		stop := start(t, r)
		j, err := r.Enqueue(t.Context(), "zombie", nil)
		require.NoError(t, err)
		<-running
		err = stop()
		require.ErrorIs(t, err, jobs.ErrClosed)
		// The job keeps its lease (left to expire); it was not released while
		// its handler may still run.
		require.Equal(t, jobs.StatusRunning, get(t, r, j.ID).Status)
		close(release)
		<-returned
	})
}

func TestDrainRunsEveryJobExactlyOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		n := 10000
		if _, mem := repo.(*jobs.MemoryRepository); raceEnabled && !mem {
			n = 1000 // SQL drivers run 10–25× slower under the race detector
		}
		r := newRunner(t, repo, jobs.WithConcurrency(8))
		var counts sync.Map
		var total atomic.Int64
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			c, _ := counts.LoadOrStore(j.ID, new(atomic.Int32))
			c.(*atomic.Int32).Add(1)
			total.Add(1)
			return nil, nil
		})
		reqs := make([]jobs.EnqueueRequest, 500)
		for i := range reqs {
			reqs[i] = jobs.EnqueueRequest{Kind: "k"}
		}
		var ids []uuid.UUID
		for len(ids) < n {
			js, err := r.EnqueueMany(t.Context(), reqs...)
			require.NoError(t, err)
			for _, j := range js {
				ids = append(ids, j.ID)
			}
		}
		stop := start(t, r)
		require.Eventually(t, func() bool { return total.Load() >= int64(n) }, 60*time.Second, 5*time.Millisecond)
		require.NoError(t, stop())
		for _, id := range ids {
			c, ok := counts.Load(id)
			require.True(t, ok, "job %s never ran", id)
			require.Equal(t, int32(1), c.(*atomic.Int32).Load(), "job %s ran more than once", id)
		}
		page, err := r.List(t.Context(), jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusPending, jobs.StatusRunning}})
		require.NoError(t, err)
		require.Empty(t, page.Jobs)
	})
}

func TestRunnerRidesOutStorageFaults(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		faulty := newFaultRepo(repo)
		faulty.failClaims, faulty.failFinishes, faulty.failProgress = 2, 2, 1
		r := newRunner(t, faulty)
		reported := make(chan struct{})
		proceed := make(chan struct{})
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			if err := p.Report(0.4, "stored despite a failed write"); err != nil {
				return nil, err
			}
			close(reported)
			<-proceed
			return json.RawMessage(`"ok"`), nil
		})
		j, err := r.Enqueue(t.Context(), "k", nil)
		require.NoError(t, err)
		start(t, r)
		<-reported
		// The first progress write fails; the value is written again later.
		require.Eventually(t, func() bool {
			return get(t, r, j.ID).Progress.Message == "stored despite a failed write"
		}, 20*time.Second, 5*time.Millisecond)
		close(proceed)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status, "claims and finishes are retried")
		require.Equal(t, 1, final.Attempt)
		require.JSONEq(t, `"ok"`, string(final.Result))
	})
}
