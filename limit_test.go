package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// gauge tracks how many handlers run at once, in all and per key, and the
// most ever seen.
type gauge struct {
	mu             sync.Mutex
	now, peak      int
	perKey         map[string]int
	peakKey        int
	started, ended int
}

func (g *gauge) enter(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.perKey == nil {
		g.perKey = map[string]int{}
	}
	g.now++
	g.started++
	g.perKey[key]++
	g.peak = max(g.peak, g.now)
	g.peakKey = max(g.peakKey, g.perKey[key])
}

func (g *gauge) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now--
	g.ended++
	g.perKey[key]--
}

func (g *gauge) running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

// TestRunnerKindLimit runs 12 jobs of a kind limited to 2 at once on a
// runner of concurrency 8 that never polls: at most 2 run at a time, and
// each finished job makes room for the next at once (the runner claims
// again when a limited job ends, without waiting for a poll).
func TestRunnerKindLimit(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithConcurrency(8), jobs.WithPollInterval(time.Hour))
		var g gauge
		release := make(chan struct{})
		r.Handle("gpu", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
			g.enter("")
			defer g.leave("")
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		}, jobs.WithLimit(jobs.Limit{Running: 2}))
		var ids []uuid.UUID
		for range 12 {
			j, err := r.Enqueue(t.Context(), "gpu", nil)
			require.NoError(t, err)
			ids = append(ids, j.ID)
		}
		start(t, r)
		require.Eventually(t, func() bool { return g.running() == 2 }, 10*time.Second, time.Millisecond)
		close(release)
		for _, id := range ids {
			require.Equal(t, jobs.StatusSucceeded, await(t, r, id).Status)
		}
		require.Equal(t, 2, g.peak, "never more than the limit at once")
	})
}

// TestRunnerQueueLimitPerKey runs jobs of three users in a queue limited
// to 1 per key and 2 in all: no user ever has two at once.
func TestRunnerQueueLimitPerKey(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		r := newRunner(t, repo, jobs.WithConcurrency(8),
			jobs.WithQueueLimit("uploads", jobs.Limit{PerKey: 1, Running: 2}))
		var g gauge
		r.Handle("scan", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
			g.enter(j.ConcurrencyKey)
			defer g.leave(j.ConcurrencyKey)
			time.Sleep(2 * time.Millisecond) // work that overlaps with the others'
			return nil, nil
		})
		var ids []uuid.UUID
		for i := range 15 {
			j, err := r.Enqueue(t.Context(), "scan", nil, jobs.InQueue("uploads"),
				jobs.WithConcurrencyKey(fmt.Sprintf("user-%d", i%3)))
			require.NoError(t, err)
			ids = append(ids, j.ID)
		}
		start(t, r)
		for _, id := range ids {
			require.Equal(t, jobs.StatusSucceeded, await(t, r, id).Status)
		}
		require.Equal(t, 1, g.peakKey, "one job per user at a time")
		require.LessOrEqual(t, g.peak, 2)
	})
}

// TestRunnerRateLimitDoesNotPoll runs 6 jobs of a kind allowed 2 starts
// per 300ms on a runner that never polls: the starts come in three waves,
// the runner sleeps until the rate lets the next wave start (it learns
// when from the claim), and it claims a handful of times, not hundreds.
func TestRunnerRateLimitDoesNotPoll(t *testing.T) {
	t.Parallel()
	const period = 300 * time.Millisecond
	eachBackend(t, func(t *testing.T, repo jobs.JobRepository) {
		cc := &claimCounter{JobRepository: repo}
		r := newRunner(t, cc, jobs.WithConcurrency(8), jobs.WithPollInterval(time.Hour))
		r.Handle("api", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
			return nil, nil
		}, jobs.WithLimit(jobs.Limit{Rate: 2, Period: period}))
		var ids []uuid.UUID
		for range 6 {
			j, err := r.Enqueue(t.Context(), "api", nil)
			require.NoError(t, err)
			ids = append(ids, j.ID)
		}
		start(t, r)
		var starts []time.Time // of the claims, as the repository counts them
		for _, id := range ids {
			j := await(t, r, id)
			require.Equal(t, jobs.StatusSucceeded, j.Status)
			starts = append(starts, j.StartedAt)
		}
		slices.SortFunc(starts, time.Time.Compare)
		for i := range len(starts) - 2 {
			require.GreaterOrEqual(t, starts[i+2].Sub(starts[i]), period, "no 3 starts within one period")
		}
		require.Less(t, cc.claims.Load(), int64(20), "the runner waits for the rate instead of polling")
		t.Logf("%d claims", cc.claims.Load())
	})
}

// TestLimitOptionsRefuseInvalidValues checks that NewRunner refuses an
// invalid queue limit and Handle panics on an invalid kind limit.
func TestLimitOptionsRefuseInvalidValues(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	for name, o := range map[string]jobs.Option{
		"negative running":    jobs.WithQueueLimit("q", jobs.Limit{Running: -1}),
		"period without rate": jobs.WithQueueLimit("q", jobs.Limit{PerKey: 1, Period: time.Second}),
		"empty queue name":    jobs.WithQueueLimit("", jobs.Limit{Running: 1}),
	} {
		_, err := jobs.NewRunner(repo, o)
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, name)
	}
	r := newRunner(t, repo)
	require.Panics(t, func() {
		r.Handle("k", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) { return nil, nil },
			jobs.WithLimit(jobs.Limit{Rate: 1, Period: time.Nanosecond}))
	})
	_, err := r.Enqueue(t.Context(), "k", nil, jobs.WithConcurrencyKey("a\x00"))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

// TestRunnerLimitSlotFreedElsewhereWakes checks that a runner held back by
// a limit claims again when a notifier tells that a job changed (ended in
// another process, freeing the slot), without waiting for its poll.
func TestRunnerLimitSlotFreedElsewhereWakes(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	lim := jobs.Limit{Running: 1}
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started := make(chan uuid.UUID, 4)
	r.Handle("gpu", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		started <- j.ID
		return nil, nil
	}, jobs.WithLimit(lim))
	require.NoError(t, repo.Create(t.Context(), &jobs.Job{Kind: "gpu"}))
	// Another process holds the only slot.
	other, err := repo.Claim(t.Context(), jobs.ClaimQuery{Owner: "other", Limit: 1, LeaseDuration: time.Hour,
		KindLimits: map[string]jobs.Limit{"gpu": lim}})
	require.NoError(t, err)
	require.Len(t, other, 1)
	j, err := r.Enqueue(t.Context(), "gpu", nil)
	require.NoError(t, err)
	start(t, r)
	<-n.joined
	select {
	case id := <-started:
		t.Fatalf("job %s started while the slot was taken", id)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, repo.Finish(t.Context(), jobs.Completion{Lease: other[0].Lease(), Status: jobs.StatusSucceeded}))
	n.send(jobs.Event{Changed: []uuid.UUID{other[0].ID}})
	select {
	case id := <-started:
		require.Equal(t, j.ID, id)
	case <-time.After(5 * time.Second):
		t.Fatal("the freed slot did not wake the runner")
	}
}
