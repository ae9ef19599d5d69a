package follow_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/follow"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newRunner runs a runner on a memory repository with a "lines" job that
// appends n items, checkpointing after each but the last (stored with the
// outcome), and waits at gate (when not nil) after the item numbered 3.
func newRunner(t *testing.T, gate <-chan struct{}) *jobs.Runner {
	t.Helper()
	repo := jobs.NewMemoryRepository()
	r, err := jobs.NewRunner(repo)
	require.NoError(t, err)
	jobs.Handle(r, "lines", func(ctx context.Context, _ *jobs.Job, n int, p jobs.Reporter) (int, error) {
		for i := range n {
			if err := p.Append(i + 1); err != nil {
				return 0, err
			}
			if i == n-1 {
				break
			}
			if err := p.Checkpoint(ctx, i+1); err != nil {
				return 0, err
			}
			if err := p.Report(float64(i+1)/float64(n), ""); err != nil {
				return 0, err
			}
			if i+1 == 3 && gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
					return 0, context.Cause(ctx)
				}
			}
		}
		return n, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, repo.Close())
	})
	return r
}

// collect reads s to its end and returns the seq of each item, the states,
// and the final event.
func collect(t *testing.T, s *follow.Stream, each func(follow.Event)) (items []int64, states []jobs.Snapshot, end follow.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		ev := s.Next(ctx, nil)
		if each != nil {
			each(ev)
		}
		switch ev.Kind {
		case follow.End:
			return items, states, ev
		case follow.Output:
			var v int64
			require.NoError(t, json.Unmarshal(ev.Item.Data, &v))
			require.Equal(t, ev.Item.Seq, v)
			items = append(items, ev.Item.Seq)
		case follow.State:
			require.False(t, len(states) > 0 && states[len(states)-1].Status.Terminal(), "nothing after the terminal state")
			states = append(states, ev.State)
		}
	}
}

func seqs(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// A running job: items and states interleave, every item comes once and
// in order, and the terminal state comes last, after the items stored with
// the outcome.
func TestStreamOfARunningJob(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	r := newRunner(t, gate)
	j, err := r.Enqueue(t.Context(), "lines", 8)
	require.NoError(t, err)
	s := follow.Start(t.Context(), r, j.ID, 0)
	defer s.Stop()
	items, states, end := collect(t, s, func(ev follow.Event) {
		if ev.Kind == follow.Output && ev.Item.Seq == 3 {
			close(gate) // item 3 came while the job waits: the stream is live
		}
	})
	require.NoError(t, end.Err)
	require.Equal(t, seqs(1, 8), items)
	require.Equal(t, jobs.StatusSucceeded, states[len(states)-1].Status)
	require.Equal(t, follow.End, s.Next(t.Context(), nil).Kind, "End again after End")
}

// A finished job: Watch has the terminal state at once, yet every item
// comes before it; with after, only the later items.
func TestStreamOfAFinishedJobHoldsTheEndBack(t *testing.T) {
	t.Parallel()
	r := newRunner(t, nil)
	j, err := r.Enqueue(t.Context(), "lines", 50)
	require.NoError(t, err)
	_, err = r.Await(t.Context(), j.ID)
	require.NoError(t, err)
	for _, after := range []int64{0, 47, 50} {
		s := follow.Start(t.Context(), r, j.ID, after)
		items, states, end := collect(t, s, nil)
		s.Stop()
		require.NoError(t, end.Err)
		require.Equal(t, seqs(after+1, 50), items, "after %d", after)
		require.Len(t, states, 1)
		require.Equal(t, jobs.StatusSucceeded, states[0].Status)
	}
}

func TestStreamEnds(t *testing.T) {
	t.Parallel()
	r := newRunner(t, nil)
	s := follow.Start(t.Context(), r, uuid.New(), 0)
	ev := s.Next(t.Context(), nil)
	s.Stop()
	require.Equal(t, follow.End, ev.Kind)
	require.ErrorIs(t, ev.Err, jobs.ErrNotFound)

	// A job nobody runs: its state, a tick, then the end when ctx is done.
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	producer, err := jobs.NewRunner(repo)
	require.NoError(t, err)
	j, err := producer.Enqueue(t.Context(), "lines", 3)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	s = follow.Start(ctx, producer, j.ID, 0)
	defer s.Stop()
	ev = s.Next(ctx, nil)
	require.Equal(t, follow.State, ev.Kind)
	require.Equal(t, jobs.StatusPending, ev.State.Status)
	tick := make(chan time.Time, 1)
	tick <- time.Now()
	require.Equal(t, follow.Tick, s.Next(ctx, tick).Kind)
	cancel()
	ev = s.Next(ctx, nil)
	require.Equal(t, follow.End, ev.Kind)
	require.NoError(t, ev.Err, "a done context is no error")
	require.False(t, errors.Is(ev.Err, context.Canceled))
}
