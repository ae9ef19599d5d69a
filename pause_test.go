package jobs_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// startRecorder returns a runner on repo that polls only once an hour (so
// that anything it starts within a test was started by a wake-up, not a
// poll) and whose handler of kind "k" sends each job's ID on the returned
// channel when it starts.
func startRecorder(t *testing.T, repo jobs.JobRepository, opts ...jobs.Option) (*jobs.Runner, <-chan uuid.UUID) {
	t.Helper()
	r := newRunner(t, repo, append([]jobs.Option{jobs.WithPollInterval(time.Hour), jobs.WithConcurrency(1)}, opts...)...)
	started := make(chan uuid.UUID, 100)
	r.Handle("k", func(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		started <- j.ID
		return nil, nil
	})
	start(t, r)
	return r, started
}

// enqueueIn enqueues a job of kind "k" in queue q.
func enqueueIn(t *testing.T, r *jobs.Runner, q string) *jobs.Job {
	t.Helper()
	j, err := r.Enqueue(t.Context(), "k", nil, jobs.InQueue(q))
	require.NoError(t, err)
	return j
}

// TestPauseQueueStartsNothingFromTheCall pauses a queue and enqueues a job
// to it right after, then a job to another queue: the local enqueues wake
// the fetcher at once, and the second job, claimed after the first would
// have been (it is newer), runs while the first stays pending. A resume
// starts it at once (the runner polls once an hour).
func TestPauseQueueStartsNothingFromTheCall(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r, started := startRecorder(t, repo)
		require.NoError(t, r.PauseQueue(t.Context(), "p"))
		held := enqueueIn(t, r, "p")
		marker := enqueueIn(t, r, "other")
		require.Equal(t, marker.ID, recv(t, started), "the paused queue's job is not started")
		require.Equal(t, jobs.StatusSucceeded, await(t, r, marker.ID).Status)
		j := get(t, r, held.ID)
		require.Equal(t, jobs.StatusPending, j.Status)
		require.Zero(t, j.Attempt, "never claimed")

		st, err := r.Stats(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"p"}, st.Paused)
		require.Equal(t, 1, st.ByQueue["p"][jobs.StatusPending])

		require.NoError(t, r.ResumeQueue(t.Context(), "p"))
		require.Equal(t, held.ID, recv(t, started), "resumed: the job starts without waiting for a poll")
		require.Equal(t, jobs.StatusSucceeded, await(t, r, held.ID).Status)
	})
}

// holdClaim wraps a repository so that the first claim that returns jobs
// reports them on claimed and then waits for proceed before it returns to
// the runner: a claim under way while the test pauses the queue.
type holdClaim struct {
	jobs.JobRepository
	once    sync.Once
	claimed chan []uuid.UUID
	proceed chan struct{}
}

func (h *holdClaim) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	js, err := h.JobRepository.Claim(ctx, q)
	if len(js) > 0 {
		h.once.Do(func() {
			ids := make([]uuid.UUID, len(js))
			for i, j := range js {
				ids[i] = j.ID
			}
			h.claimed <- ids
			<-h.proceed
		})
	}
	return js, err
}

// TestPauseQueueHoldsBackJobsClaimedBeforeIt pauses a queue while a claim
// that returned one of its jobs is under way: the runner hands the job
// back to pending without starting it (the attempt is not counted), and
// runs it after the resume.
func TestPauseQueueHoldsBackJobsClaimedBeforeIt(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		h := &holdClaim{JobRepository: repo, claimed: make(chan []uuid.UUID, 1), proceed: make(chan struct{})}
		released := make(chan uuid.UUID, 10)
		r, started := startRecorder(t, h, jobs.WithHooks(jobs.Hooks{OnReleased: func(j *jobs.Job) { released <- j.ID }}))
		j := enqueueIn(t, r, "p")
		require.Equal(t, []uuid.UUID{j.ID}, recv(t, h.claimed))
		require.NoError(t, r.PauseQueue(t.Context(), "p"))
		close(h.proceed)
		require.Equal(t, j.ID, recv(t, released), "handed back, not started")
		got := get(t, r, j.ID)
		require.Equal(t, jobs.StatusPending, got.Status)
		require.Zero(t, got.Attempt, "the attempt is not counted")
		select {
		case id := <-started:
			t.Fatalf("job %s started in a paused queue", id)
		default:
		}

		require.NoError(t, r.ResumeQueue(t.Context(), "p"))
		require.Equal(t, j.ID, recv(t, started))
		done := await(t, r, j.ID)
		require.Equal(t, jobs.StatusSucceeded, done.Status)
		require.Equal(t, 1, done.Attempt)
	})
}

// TestResumeThroughTheRepositoryWakesRunners resumes a queue through the
// repository itself, not through the runner: a runner of this process on
// the same jobsbun repository hears of it and starts the queue's job at
// once (it polls once an hour).
func TestResumeThroughTheRepositoryWakesRunners(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		if _, ok := repo.(jobs.Notifier); !ok {
			t.Skip("the repository does not notify the runners of its process")
		}
		r, started := startRecorder(t, repo)
		require.NoError(t, repo.PauseQueue(t.Context(), "p"))
		j := enqueueIn(t, r, "p")
		marker := enqueueIn(t, r, "other")
		require.Equal(t, marker.ID, recv(t, started))
		require.NoError(t, repo.ResumeQueue(t.Context(), "p"))
		require.Equal(t, j.ID, recv(t, started), "resumed: the job starts without waiting for a poll")
	})
}
