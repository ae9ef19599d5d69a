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

// fakeNotifier is a Notifier whose events the test sends by hand.
type fakeNotifier struct {
	mu     sync.Mutex
	subs   map[int]func(jobs.Event)
	next   int
	joined chan struct{} // receives on every Subscribe
}

func newFakeNotifier() *fakeNotifier {
	return &fakeNotifier{subs: map[int]func(jobs.Event){}, joined: make(chan struct{}, 16)}
}

func (f *fakeNotifier) Subscribe(fn func(jobs.Event)) func() {
	f.mu.Lock()
	id := f.next
	f.next++
	f.subs[id] = fn
	f.mu.Unlock()
	f.joined <- struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

func (f *fakeNotifier) send(ev jobs.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.subs {
		fn(ev)
	}
}

func (f *fakeNotifier) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// hintRunner returns a runner whose polls are so slow that only hints can
// explain a prompt reaction.
func hintRunner(t *testing.T, repo jobs.JobRepository, n jobs.Notifier) *jobs.Runner {
	const never = time.Hour
	return newRunner(t, repo, jobs.WithNotifier(n), jobs.WithPollInterval(never),
		jobs.WithLeaseDuration(never), jobs.WithRefreshInterval(never))
}

// blockingHandler registers kind "block": it reports its start and returns
// the cause of its context's end.
func blockingHandler(r *jobs.Runner) (started chan uuid.UUID, causes chan error) {
	started, causes = make(chan uuid.UUID, 8), make(chan error, 8)
	r.Handle("block", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		started <- j.ID
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	return started, causes
}

func TestNotifierCancelRequestedStopsHandler(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started, causes := blockingHandler(r)
	j, err := r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	start(t, r)
	require.Equal(t, j.ID, <-started)

	// Another process asks to cancel: only the repository changes here,
	// so without the hint the handler would wait for the hour-long poll.
	_, err = repo.RequestCancel(t.Context(), j.ID)
	require.NoError(t, err)
	n.send(jobs.Event{Canceled: []uuid.UUID{uuid.New(), j.ID}})
	require.ErrorIs(t, <-causes, jobs.ErrCanceled)
	require.Equal(t, jobs.StatusCanceled, await(t, r, j.ID).Status)
}

func TestNotifierResyncPollsCancelRequests(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started, causes := blockingHandler(r)
	j, err := r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	start(t, r)
	<-started
	_, err = repo.RequestCancel(t.Context(), j.ID)
	require.NoError(t, err)
	n.send(jobs.Event{Resync: true})
	require.ErrorIs(t, <-causes, jobs.ErrCanceled)
}

func TestNotifierJobsReadyWakesFetcher(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started, _ := blockingHandler(r)
	start(t, r)
	<-n.joined
	// Created by "another process": the runner's own Enqueue is not used.
	j := &jobs.Job{Kind: "block", Payload: json.RawMessage(`{}`)}
	require.NoError(t, repo.Create(t.Context(), j))
	n.send(jobs.Event{Ready: true})
	require.Equal(t, j.ID, <-started)
}

func TestNotifierJobsChangedWakesRemoteWatch(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	n := newFakeNotifier()
	r := hintRunner(t, repo, n) // never runs: the job is "elsewhere"
	r.Handle("block", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) { return nil, nil })
	j := &jobs.Job{Kind: "block", Payload: json.RawMessage(`{}`)}
	require.NoError(t, repo.Create(t.Context(), j))

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var seen []jobs.Status
	for s, err := range r.Watch(ctx, j.ID) {
		require.NoError(t, err)
		seen = append(seen, s.Status)
		if s.Status == jobs.StatusPending {
			require.Equal(t, 1, n.count(), "a remote Watch subscribes to hints")
			_, err := repo.RequestCancel(t.Context(), j.ID)
			require.NoError(t, err)
			n.send(jobs.Event{Changed: []uuid.UUID{j.ID}})
		}
	}
	require.Equal(t, []jobs.Status{jobs.StatusPending, jobs.StatusCanceled}, seen)
	require.Zero(t, n.count(), "the subscription ends with the Watch")
}

// TestNotifierEventWithSeveralHints checks that the runner acts on every
// hint of one event, not just the first.
func TestNotifierEventWithSeveralHints(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started, causes := blockingHandler(r)
	running, err := r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	start(t, r)
	require.Equal(t, running.ID, <-started)
	// A pending job of "another process", followed by a Watch here.
	other := &jobs.Job{Kind: "other", Payload: json.RawMessage(`{}`)}
	require.NoError(t, repo.Create(t.Context(), other))

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var seen []jobs.Status
	for s, err := range r.Watch(ctx, other.ID) {
		require.NoError(t, err)
		seen = append(seen, s.Status)
		if s.Status == jobs.StatusPending {
			_, err := repo.RequestCancel(t.Context(), running.ID)
			require.NoError(t, err)
			_, err = repo.RequestCancel(t.Context(), other.ID)
			require.NoError(t, err)
			n.send(jobs.Event{Canceled: []uuid.UUID{running.ID}, Changed: []uuid.UUID{other.ID}})
		}
	}
	require.Equal(t, []jobs.Status{jobs.StatusPending, jobs.StatusCanceled}, seen)
	require.ErrorIs(t, <-causes, jobs.ErrCanceled)
}

func TestNotifierOneSubscriptionPerRunner(t *testing.T) {
	t.Parallel()
	repo := memRepo(t)
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started, _ := blockingHandler(r)
	j, err := r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	stop := start(t, r)
	<-started
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range r.Watch(ctx, j.ID) {
		}
	}()
	require.Equal(t, 1, n.count())
	cancel()
	<-done
	require.Equal(t, 1, n.count())
	require.NoError(t, stop())
	require.Zero(t, n.count())
}

func TestWithNotifierNil(t *testing.T) {
	t.Parallel()
	_, err := jobs.NewRunner(memRepo(t), jobs.WithNotifier(nil))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
}

// claimCounter counts Claim calls.
type claimCounter struct {
	jobs.JobRepository
	claims atomic.Int64
}

func (c *claimCounter) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	c.claims.Add(1)
	return c.JobRepository.Claim(ctx, q)
}

// TestNotifierJobsReadyStormIsBounded checks that a stream of hints of new
// jobs (one per insert anywhere) does not make the runner claim once per
// hint, and that the last hint still wakes it.
func TestNotifierJobsReadyStormIsBounded(t *testing.T) {
	t.Parallel()
	repo := &claimCounter{JobRepository: memRepo(t)}
	n := newFakeNotifier()
	r := hintRunner(t, repo, n)
	started, _ := blockingHandler(r)
	start(t, r)
	<-n.joined
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	before := repo.claims.Load()
	begin := time.Now()
	sent := 0
	for ; sent < 200; sent++ {
		<-tick.C
		n.send(jobs.Event{Ready: true})
	}
	took := time.Since(begin)
	// At most one claim per cooldown (5 ms) while the hints came, plus the
	// delayed one after the last.
	limit := int64(took/(5*time.Millisecond)) + 3
	require.LessOrEqual(t, repo.claims.Load()-before, limit, "%d hints in %v", sent, took)

	j := &jobs.Job{Kind: "block", Payload: json.RawMessage(`{}`)}
	require.NoError(t, repo.Create(t.Context(), j))
	n.send(jobs.Event{Ready: true})
	require.Equal(t, j.ID, <-started, "a hint right after the storm is not lost")
}
