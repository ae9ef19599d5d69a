package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// events records hook calls.
type events struct {
	mu   sync.Mutex
	list []string
	jobs map[string]*jobs.Job
}

func (e *events) add(name string) func(*jobs.Job) {
	return func(j *jobs.Job) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.list = append(e.list, name+":"+j.Kind)
		e.jobs[name+":"+j.Kind] = j
	}
}

func (e *events) has(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.jobs[name]
	return ok
}

func (e *events) job(name string) *jobs.Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jobs[name]
}

func TestHooksSeeEveryLifecycleEvent(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		ev := &events{jobs: map[string]*jobs.Job{}}
		var progress sync.Map
		r := newRunner(t, repo, jobs.WithShutdown(time.Nanosecond, 0), jobs.WithHooks(jobs.Hooks{
			OnStarted:   ev.add("started"),
			OnSucceeded: ev.add("succeeded"),
			OnFailed:    ev.add("failed"),
			OnCanceled:  ev.add("canceled"),
			OnRetrying:  ev.add("retrying"),
			OnReleased:  ev.add("released"),
			OnProgress:  func(s jobs.Snapshot) { progress.Store(s.Message, s) },
		}))
		block := make(chan struct{})
		r.Handle("ok", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			if err := p.Report(0.5, "ok half"); err != nil {
				return nil, err
			}
			<-block
			return json.RawMessage(`true`), nil
		})
		r.Handle("bad", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return nil, errors.New("bad")
		})
		r.Handle("wait", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		stop := start(t, r)
		ok, err := r.Enqueue(t.Context(), "ok", nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { _, seen := progress.Load("ok half"); return seen }, 10*time.Second, time.Millisecond,
			"OnProgress runs when progress is written")
		close(block)
		require.Equal(t, jobs.StatusSucceeded, await(t, r, ok.ID).Status)

		bad, err := r.Enqueue(t.Context(), "bad", nil, jobs.WithMaxAttempts(2))
		require.NoError(t, err)
		await(t, r, bad.ID)
		canceled, err := r.Enqueue(t.Context(), "wait", nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return ev.has("started:wait") }, 10*time.Second, time.Millisecond)
		_, err = r.Cancel(t.Context(), canceled.ID)
		require.NoError(t, err)
		await(t, r, canceled.ID)
		released, err := r.Enqueue(t.Context(), "wait", nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			j := get(t, r, released.ID)
			return j.Status == jobs.StatusRunning
		}, 10*time.Second, time.Millisecond)
		require.Eventually(t, func() bool { return len(eventsOf(ev, "started:wait")) == 2 }, 10*time.Second, time.Millisecond)
		require.NoError(t, stop())

		for _, name := range []string{"started:ok", "succeeded:ok", "started:bad", "retrying:bad", "failed:bad", "canceled:wait", "released:wait"} {
			require.True(t, ev.has(name), name)
		}
		require.JSONEq(t, "true", string(ev.job("succeeded:ok").Result))
		require.Equal(t, jobs.StatusSucceeded, ev.job("succeeded:ok").Status)
		retry := ev.job("retrying:bad")
		require.Equal(t, jobs.StatusPending, retry.Status)
		require.Equal(t, "bad", retry.Error)
		require.Equal(t, jobs.StatusFailed, ev.job("failed:bad").Status)
		require.Equal(t, jobs.StatusCanceled, ev.job("canceled:wait").Status)
		require.Equal(t, 0, ev.job("released:wait").Attempt)
	})
}

func eventsOf(e *events, name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, n := range e.list {
		if n == name {
			out = append(out, n)
		}
	}
	return out
}

func TestPanickingHookDoesNotBreakTheRunner(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithHooks(jobs.Hooks{
			OnStarted:   func(*jobs.Job) { panic("hook") },
			OnSucceeded: func(*jobs.Job) { panic("hook") },
		}))
		r.Handle("k", noop)
		start(t, r)
		for range 3 {
			j, err := r.Enqueue(t.Context(), "k", nil)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusSucceeded, await(t, r, j.ID).Status)
		}
	})
}

// heldWrites holds every Finish and Release until release is closed, and
// tells arrived when one comes.
type heldWrites struct {
	jobs.JobRepository
	arrived chan struct{}
	release chan struct{}
}

func (h *heldWrites) hold() {
	select {
	case h.arrived <- struct{}{}:
	default:
	}
	<-h.release
}

func (h *heldWrites) Finish(ctx context.Context, cs ...jobs.Completion) error {
	h.hold()
	return h.JobRepository.Finish(ctx, cs...)
}

func (h *heldWrites) Release(ctx context.Context, ls ...jobs.Lease) error {
	h.hold()
	return h.JobRepository.Release(ctx, ls...)
}

// A retry or a release that the repository stores as canceled (a cancel
// was requested before it landed) is reported as canceled: OnCanceled
// fires, never OnRetrying or OnReleased, and watchers see canceled.
func TestHooksReportTheStoredStatusWhenACancelTakesOver(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		for _, outcome := range []string{"retry", "release"} {
			held := &heldWrites{JobRepository: repo, arrived: make(chan struct{}, 1), release: make(chan struct{})}
			fired := make(chan string, 4)
			hook := func(name string) func(*jobs.Job) { return func(*jobs.Job) { fired <- name } }
			r := newRunner(t, held, jobs.WithShutdown(time.Nanosecond, 0), jobs.WithHooks(jobs.Hooks{
				OnCanceled: hook("canceled"), OnRetrying: hook("retrying"), OnReleased: hook("released"),
			}))
			running := make(chan struct{})
			r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
				close(running)
				if outcome == "retry" {
					return nil, errors.New("try again")
				}
				<-ctx.Done() // shutdown: released
				return nil, ctx.Err()
			})
			stop := start(t, r)
			j, err := r.Enqueue(t.Context(), "k", nil)
			require.NoError(t, err)
			recv(t, running)
			stopped := make(chan error, 1)
			if outcome == "release" {
				go func() { stopped <- stop() }()
			}
			recv(t, held.arrived)
			// Another process cancels while the outcome is on its way.
			_, err = reopen(t, repo).RequestCancel(t.Context(), j.ID)
			require.NoError(t, err)
			close(held.release)
			require.Equal(t, "canceled", recv(t, fired), outcome)
			require.Equal(t, jobs.StatusCanceled, get(t, r, j.ID).Status)
			if outcome == "release" {
				require.NoError(t, recv(t, stopped))
			} else {
				require.NoError(t, stop())
			}
			select {
			case name := <-fired:
				t.Fatalf("%s: hook %s fired after canceled", outcome, name)
			default:
			}
		}
	})
}
