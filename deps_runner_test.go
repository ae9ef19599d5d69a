package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// A graph created in one call: chunks, then a merge that reads their
// results through Runner.Get, by the IDs of job.DependsOn.
func TestRunnerDepsChunksThenMerge(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	jobs.Handle(r, "chunk", func(ctx context.Context, j *jobs.Job, n int, _ jobs.Reporter) (int, error) {
		return n * n, nil
	})
	jobs.Handle(r, "merge", func(ctx context.Context, j *jobs.Job, _ struct{}, _ jobs.Reporter) (int, error) {
		return sumResults(ctx, r, j.DependsOn)
	})
	reqs := []jobs.EnqueueRequest{
		{Kind: "chunk", Payload: 1},
		{Kind: "chunk", Payload: 2},
		{Kind: "chunk", Payload: 3},
		{Kind: "merge", After: []int{0, 1, 2}},
	}
	js, err := r.EnqueueMany(t.Context(), reqs...)
	require.NoError(t, err)
	merge := js[3]
	require.Equal(t, jobs.StatusWaiting, merge.Status)
	require.Equal(t, []uuid.UUID{js[0].ID, js[1].ID, js[2].ID}, merge.DependsOn)
	require.Nil(t, merge.After)
	start(t, r)
	sum, final, err := jobs.AwaitResult[int](t.Context(), r, merge.ID)
	require.NoError(t, err)
	require.Equal(t, 1+4+9, sum)
	require.Equal(t, 1, final.Attempt)
	for _, c := range js[:3] {
		require.False(t, get(t, r, c.ID).FinishedAt.After(final.StartedAt), "the merge started after every chunk ended")
	}
}

// After names jobs created before, by ID: the job waits while its
// dependency runs, and runs once it has succeeded.
func TestRunnerAfterByID(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	started, release := make(chan struct{}), make(chan struct{})
	r.Handle("first", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		close(started)
		select {
		case <-release:
			return json.RawMessage(`"done"`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	jobs.Handle(r, "second", func(ctx context.Context, j *jobs.Job, _ struct{}, _ jobs.Reporter) (string, error) {
		dep, err := r.Get(ctx, j.DependsOn[0])
		if err != nil {
			return "", err
		}
		return string(dep.Status) + " " + string(dep.Result), nil
	})
	start(t, r)
	first, err := r.Enqueue(t.Context(), "first", nil)
	require.NoError(t, err)
	recv(t, started)
	second, err := r.Enqueue(t.Context(), "second", nil, jobs.After(first.ID))
	require.NoError(t, err)
	require.Equal(t, jobs.StatusWaiting, second.Status, "its dependency is running")
	require.Equal(t, []uuid.UUID{first.ID}, second.DependsOn)
	require.Equal(t, jobs.StatusWaiting, get(t, r, second.ID).Status)
	close(release)
	got, _, err := jobs.AwaitResult[string](t.Context(), r, second.ID)
	require.NoError(t, err)
	require.Equal(t, `succeeded "done"`, got)
}

// A failed dependency cancels the jobs waiting for it, except those that
// run anyway.
func TestRunnerRunAnyway(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	r.Handle("step", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		return nil, jobs.Permanent(errors.New("boom"))
	})
	ran := make(chan string, 2)
	r.Handle("after", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		ran <- "after"
		return nil, nil
	})
	jobs.Handle(r, "cleanup", func(ctx context.Context, j *jobs.Job, _ struct{}, _ jobs.Reporter) (string, error) {
		ran <- "cleanup"
		dep, err := r.Get(ctx, j.DependsOn[0])
		if err != nil {
			return "", err
		}
		return dep.Error, nil
	})
	js, err := r.EnqueueMany(t.Context(),
		jobs.EnqueueRequest{Kind: "step"},
		jobs.EnqueueRequest{Kind: "after", After: []int{0}},
		jobs.EnqueueRequest{Kind: "cleanup", After: []int{0}, Options: []jobs.EnqueueOption{jobs.WithRunAnyway()}},
	)
	require.NoError(t, err)
	require.True(t, js[2].RunAnyway)
	start(t, r)
	got, _, err := jobs.AwaitResult[string](t.Context(), r, js[2].ID)
	require.NoError(t, err)
	require.Equal(t, "boom", got, "the clean-up reads the error of the failed step")
	_, skipped, err := jobs.AwaitResult[json.RawMessage](t.Context(), r, js[1].ID)
	require.ErrorIs(t, err, jobs.ErrCanceled)
	require.Equal(t, fmt.Sprintf("dependency %s failed", js[0].ID), skipped.Error)
	require.Zero(t, skipped.Attempt)
	require.Equal(t, "cleanup", recv(t, ran), "only the clean-up ran")
	require.Empty(t, ran)
}

// A graph that is not one (a request after itself or a later one, an
// unknown job) is refused before anything is stored.
func TestRunnerAfterInvalid(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	r.Handle("k", noop)
	for name, reqs := range map[string][]jobs.EnqueueRequest{
		"a later request":  {{Kind: "k", After: []int{1}}, {Kind: "k"}},
		"itself":           {{Kind: "k"}, {Kind: "k", After: []int{1}}},
		"a negative index": {{Kind: "k"}, {Kind: "k", After: []int{-1}}},
		"past the end":     {{Kind: "k"}, {Kind: "k", After: []int{5}}},
		"an unknown ID":    {{Kind: "k"}, {Kind: "k", Options: []jobs.EnqueueOption{jobs.After(uuid.Must(uuid.NewV7()))}}},
		"the nil ID":       {{Kind: "k", Options: []jobs.EnqueueOption{jobs.After(uuid.Nil)}}},
	} {
		js, err := r.EnqueueMany(t.Context(), reqs...)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, name)
		require.Nil(t, js, name)
	}
	_, err := r.Enqueue(t.Context(), "k", nil, jobs.After(uuid.Must(uuid.NewV7())))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	s, err := r.Stats(t.Context())
	require.NoError(t, err)
	require.Zero(t, s.Total, "nothing is stored")
}

// sumResults returns the sum of the int results of the jobs ids, which
// must all have succeeded (a permanent error otherwise).
func sumResults(ctx context.Context, r *jobs.Runner, ids []uuid.UUID) (int, error) {
	sum := 0
	for _, id := range ids {
		dep, err := r.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		if dep.Status != jobs.StatusSucceeded {
			return 0, jobs.Permanent(fmt.Errorf("dependency %s is %s", id, dep.Status))
		}
		var n int
		if err := json.Unmarshal(dep.Result, &n); err != nil {
			return 0, jobs.Permanent(err)
		}
		sum += n
	}
	return sum, nil
}
