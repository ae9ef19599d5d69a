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

type requestIDKey struct{}

// OnEnqueue sees the caller's ctx and may add metadata before the job is
// stored; its done func gets the write's outcome, with the stored job.
func TestOnEnqueueAddsMetadataFromTheCallersContext(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		var (
			mu   sync.Mutex
			done []error
			ids  []string
		)
		r := newRunner(t, repo, jobs.WithHooks(jobs.Hooks{
			OnEnqueue: func(ctx context.Context, j *jobs.Job) func(error) {
				if id, ok := ctx.Value(requestIDKey{}).(string); ok {
					if j.Metadata == nil {
						j.Metadata = map[string]string{}
					}
					j.Metadata["request_id"] = id
				}
				return func(err error) {
					mu.Lock()
					defer mu.Unlock()
					done = append(done, err)
					if err == nil {
						ids = append(ids, j.ID.String())
					}
				}
			},
		}))
		seen := make(chan map[string]string, 4)
		r.Handle("k", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			seen <- j.Metadata
			return nil, nil
		})
		start(t, r)
		ctx := context.WithValue(t.Context(), requestIDKey{}, "req-1")

		j, err := r.Enqueue(ctx, "k", nil, jobs.WithMetadata(map[string]string{"user": "ann"}))
		require.NoError(t, err)
		require.Equal(t, map[string]string{"user": "ann", "request_id": "req-1"}, get(t, r, j.ID).Metadata, "stored with the job")
		require.Equal(t, map[string]string{"user": "ann", "request_id": "req-1"}, recv(t, seen), "the handler sees it")

		js, err := r.EnqueueMany(ctx, jobs.EnqueueRequest{Kind: "k"}, jobs.EnqueueRequest{Kind: "k"})
		require.NoError(t, err)
		for _, j := range js {
			require.Equal(t, map[string]string{"request_id": "req-1"}, get(t, r, j.ID).Metadata)
			await(t, r, j.ID)
		}
		_, err = r.Enqueue(ctx, "k", nil, jobs.InQueue("bad\x00queue"))
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)

		mu.Lock()
		defer mu.Unlock()
		require.Len(t, done, 4, "done runs once per job, after the write")
		require.NoError(t, errors.Join(done[:3]...))
		require.ErrorIs(t, done[3], jobs.ErrInvalidArgument, "done gets the enqueue's error")
		require.Equal(t, []string{j.ID.String(), js[0].ID.String(), js[1].ID.String()}, ids, "done sees the stored job")
	})
}

// attemptLog records OnAttempt calls and their ends.
type attemptLog struct {
	mu   sync.Mutex
	ends map[string][]string // kind → outcomes
	ch   chan string
}

func (a *attemptLog) hooks(tag string) jobs.Hooks {
	return jobs.Hooks{OnAttempt: func(ctx context.Context, j *jobs.Job) (context.Context, func(*jobs.Job, string)) {
		ctx = context.WithValue(ctx, requestIDKey{}, tag)
		return ctx, func(end *jobs.Job, outcome string) {
			a.mu.Lock()
			a.ends[end.Kind] = append(a.ends[end.Kind], tag+":"+outcome)
			a.mu.Unlock()
			a.ch <- tag + ":" + end.Kind + ":" + outcome + ":" + string(end.Status)
		}
	}}
}

// OnAttempt gives the handler its ctx and learns each attempt's outcome
// once it is stored; several WithHooks add up, ends in reverse order.
func TestOnAttemptWrapsEachAttempt(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		log := &attemptLog{ends: map[string][]string{}, ch: make(chan string, 64)}
		r := newRunner(t, repo, jobs.WithShutdown(time.Nanosecond, 0), jobs.WithHooks(log.hooks("outer")), jobs.WithHooks(log.hooks("inner")))
		r.Handle("ok", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return json.Marshal(ctx.Value(requestIDKey{}))
		})
		r.Handle("bad", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			return nil, errors.New("bad")
		})
		waiting := make(chan struct{}, 2)
		r.Handle("wait", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			waiting <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
		stop := start(t, r)
		ctx := t.Context()
		ok, err := r.Enqueue(ctx, "ok", nil)
		require.NoError(t, err)
		require.JSONEq(t, `"inner"`, string(await(t, r, ok.ID).Result), "the handler gets the ctx of the last OnAttempt")
		require.Equal(t, "inner:ok:succeeded:succeeded", recv(t, log.ch))
		require.Equal(t, "outer:ok:succeeded:succeeded", recv(t, log.ch))

		bad, err := r.Enqueue(ctx, "bad", nil, jobs.WithMaxAttempts(2))
		require.NoError(t, err)
		await(t, r, bad.ID)
		canceled, err := r.Enqueue(ctx, "wait", nil)
		require.NoError(t, err)
		recv(t, waiting)
		_, err = r.Cancel(ctx, canceled.ID)
		require.NoError(t, err)
		await(t, r, canceled.ID)
		released, err := r.Enqueue(ctx, "wait", nil)
		require.NoError(t, err)
		recv(t, waiting)
		require.NoError(t, stop())
		require.Equal(t, jobs.StatusPending, get(t, r, released.ID).Status)

		log.mu.Lock()
		defer log.mu.Unlock()
		require.Equal(t, []string{"inner:retrying", "outer:retrying", "inner:failed", "outer:failed"}, log.ends["bad"])
		require.Equal(t, []string{"inner:canceled", "outer:canceled", "inner:released", "outer:released"}, log.ends["wait"])
	})
}

// lostFinish refuses every outcome as written under a lost lease.
type lostFinish struct{ jobs.JobRepository }

func (l lostFinish) Finish(context.Context, ...jobs.Completion) error { return jobs.ErrLeaseLost }

func TestOnAttemptEndsLostWhenTheOutcomeIsNotStored(t *testing.T) {
	t.Parallel()
	log := &attemptLog{ends: map[string][]string{}, ch: make(chan string, 4)}
	r := newRunner(t, lostFinish{memRepo(t)}, jobs.WithHooks(log.hooks("h")))
	r.Handle("k", noop)
	start(t, r)
	_, err := r.Enqueue(t.Context(), "k", nil)
	require.NoError(t, err)
	require.Equal(t, "h:k:lost:running", recv(t, log.ch))
}

// A panic in any of the new hooks, or in what they return, is recovered:
// jobs are still enqueued and run.
func TestPanickingContextHooksDoNotBreakTheRunner(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"OnEnqueue", "enqueue done", "OnAttempt", "attempt end"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := jobs.Hooks{
				OnEnqueue: func(context.Context, *jobs.Job) func(error) {
					if name == "OnEnqueue" {
						panic(name)
					}
					return func(error) {
						if name == "enqueue done" {
							panic(name)
						}
					}
				},
				OnAttempt: func(ctx context.Context, _ *jobs.Job) (context.Context, func(*jobs.Job, string)) {
					if name == "OnAttempt" {
						panic(name)
					}
					return ctx, func(*jobs.Job, string) {
						if name == "attempt end" {
							panic(name)
						}
					}
				},
			}
			r := newRunner(t, memRepo(t), jobs.WithHooks(h))
			r.Handle("k", noop)
			start(t, r)
			for range 2 {
				j, err := r.Enqueue(t.Context(), "k", nil)
				require.NoError(t, err)
				require.Equal(t, jobs.StatusSucceeded, await(t, r, j.ID).Status)
			}
		})
	}
}
