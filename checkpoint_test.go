package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/stretchr/testify/require"
)

// step is the state a resumable test job checkpoints: the next step to do.
type step struct{ Next int }

// readOutput returns the whole stored output of job id as ints.
func readOutput(t *testing.T, repo jobs.JobRepository, id uuid.UUID) []int {
	t.Helper()
	items, err := repo.ReadOutput(t.Context(), id, 0, 1000)
	require.NoError(t, err)
	out := make([]int, len(items))
	for i, it := range items {
		require.Equal(t, int64(i+1), it.Seq)
		require.NoError(t, json.Unmarshal(it.Data, &out[i]))
	}
	return out
}

// A job that fails after its checkpoint resumes from it on the retry, and
// the item it appended after the checkpoint is not in the output: the
// output holds each step exactly once, in order.
func TestCheckpointResumesAndOutputHoldsEachStepOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		var mu sync.Mutex
		var starts []int // the step each attempt started at
		jobs.Handle(r, "steps", func(ctx context.Context, j *jobs.Job, n int, p jobs.Reporter) (int, error) {
			var st step
			_, err := j.LoadCheckpoint(&st)
			require.NoError(t, err)
			mu.Lock()
			starts = append(starts, st.Next)
			first := len(starts) == 1
			mu.Unlock()
			for ; st.Next < n; st.Next++ {
				require.NoError(t, p.Append(st.Next))
				if first && st.Next == 3 {
					return 0, errors.New("crash after appending step 3, before its checkpoint")
				}
				require.NoError(t, p.Checkpoint(ctx, step{Next: st.Next + 1}))
				require.NoError(t, p.Report(float64(st.Next+1)/float64(n), ""))
			}
			require.NoError(t, p.Append(n)) // a last item, stored with the outcome
			return n, nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "steps", 6)
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusSucceeded, final.Status)
		require.Equal(t, []int{0, 3}, starts, "the retry starts at the first step after the checkpoint")
		require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6}, readOutput(t, repo, j.ID))
		require.Equal(t, int64(7), final.OutputSeq)
		var st step
		ok, err := final.LoadCheckpoint(&st)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 6, st.Next)
	})
}

// Output follows a job's output live from another runner, as a process
// that only watches would, and ends with exactly the stored output.
func TestOutputFollowsAJobLive(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		worker := newRunner(t, repo)
		gate := make(chan struct{})
		jobs.Handle(worker, "lines", func(ctx context.Context, j *jobs.Job, n int, p jobs.Reporter) (int, error) {
			for i := range n {
				require.NoError(t, p.Append(i))
				require.NoError(t, p.Checkpoint(ctx, step{Next: i + 1}))
				if i == 2 {
					<-gate // the follower has seen the first items while the job runs
				}
			}
			return n, nil
		})
		start(t, worker)
		watcher := newRunner(t, reopen(t, repo))
		j, err := watcher.Enqueue(t.Context(), "lines", 8)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		var got []int
		for it, err := range watcher.Output(ctx, j.ID, 0) {
			require.NoError(t, err)
			var v int
			require.NoError(t, json.Unmarshal(it.Data, &v))
			require.Equal(t, int64(len(got)+1), it.Seq)
			got = append(got, v)
			if v == 2 {
				close(gate)
			}
		}
		require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, got)
		require.Equal(t, got, readOutput(t, repo, j.ID))

		// A stream resumed after item 5 gets the rest only, and ends.
		var rest []int64
		for it, err := range watcher.Output(ctx, j.ID, 5) {
			require.NoError(t, err)
			rest = append(rest, it.Seq)
		}
		require.Equal(t, []int64{6, 7, 8}, rest)
	})
}

func TestOutputOfUnknownJobAndBadStart(t *testing.T) {
	t.Parallel()
	r := newRunner(t, memRepo(t))
	errs := func(after int64) (got []error) {
		for _, err := range r.Output(t.Context(), uuid.UUID{1}, after) {
			got = append(got, err)
		}
		return got
	}
	got := errs(0)
	require.Len(t, got, 1, "one error, then the stream stops")
	require.ErrorIs(t, got[0], jobs.ErrNotFound)
	got = errs(-1)
	require.Len(t, got, 1)
	require.ErrorIs(t, got[0], jobs.ErrInvalidArgument)
}

// Checkpoints of many handlers at once each return only once stored, and
// a value that cannot be encoded fails only its own caller.
func TestCheckpointsOfManyHandlers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		saveFromEight(t, repo, 20, func(ctx context.Context, n, i int, p jobs.Reporter) {
			if n == 3 && i == 10 {
				require.ErrorIs(t, p.Checkpoint(ctx, func() {}), jobs.ErrInvalidArgument)
				require.ErrorIs(t, p.Append(make(chan int)), jobs.ErrInvalidArgument)
			}
		})
	})
}

// A save the repository refuses (an item over the payload limit) fails only
// its own caller, also when it shares a write with the saves of other
// handlers, and drops the refused items; the others' checkpoints are stored.
func TestRefusedCheckpointFailsOnlyItsCaller(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		big := strings.Repeat("x", rules.MaxPayloadBytes+10)
		var refused atomic.Int64
		saveFromEight(t, repo, 30, func(ctx context.Context, n, i int, p jobs.Reporter) {
			if n == 0 && i%3 == 1 {
				require.NoError(t, p.Append(big))
				require.ErrorIs(t, p.Checkpoint(ctx, step{Next: i + 1}), jobs.ErrTooLarge)
				refused.Add(1)
			}
		})
		require.Equal(t, int64(10), refused.Load())
	})
}

// saveFromEight runs 8 jobs (n = 0..7) at once on repo whose handlers each
// append step i and checkpoint after it, for steps steps, calling before
// each step; then it checks that every job succeeded and that its output
// is every step once, in order: each save that returned nil is stored, and
// nothing else is.
func saveFromEight(t *testing.T, repo jobs.JobRepository, steps int, before func(ctx context.Context, n, i int, p jobs.Reporter)) {
	t.Helper()
	r := newRunner(t, repo, jobs.WithConcurrency(8))
	jobs.Handle(r, "c", func(ctx context.Context, j *jobs.Job, n int, p jobs.Reporter) (int, error) {
		for i := range steps {
			before(ctx, n, i, p)
			require.NoError(t, p.Append(i))
			require.NoError(t, p.Checkpoint(ctx, step{Next: i + 1}))
		}
		return n, nil
	})
	start(t, r)
	var ids []uuid.UUID
	for n := range 8 {
		j, err := r.Enqueue(t.Context(), "c", n)
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	want := make([]int, steps)
	for i := range want {
		want[i] = i
	}
	for _, id := range ids {
		require.Equal(t, jobs.StatusSucceeded, await(t, r, id).Status)
		require.Equal(t, want, readOutput(t, repo, id))
	}
}

// An item refused with the outcome fails the job with that reason instead
// of leaving it running with nobody renewing its lease.
func TestRefusedOutputWithTheOutcomeFailsTheJob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo)
		jobs.Handle(r, "big", func(ctx context.Context, j *jobs.Job, _ struct{}, p jobs.Reporter) (int, error) {
			require.NoError(t, p.Append(strings.Repeat("x", rules.MaxPayloadBytes+10)))
			return 1, nil
		})
		start(t, r)
		j, err := r.Enqueue(t.Context(), "big", struct{}{})
		require.NoError(t, err)
		final := await(t, r, j.ID)
		require.Equal(t, jobs.StatusFailed, final.Status)
		require.Contains(t, final.Error, "output refused")
		require.Zero(t, final.OutputSeq)
	})
}
