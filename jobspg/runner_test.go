package jobspg_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/stretchr/testify/require"
)

// These tests run two runners on one schema, each with its own connection
// pool and listener, as two processes would: what one does reaches the
// other only through PostgreSQL.

const never = time.Hour

// node is one "process": a repository, a listener and a runner.
type node struct {
	repo *jobsbun.Repository
	l    *jobspg.Listener
	r    *jobs.Runner
}

func newNode(t testing.TB, dsn string, opts ...jobs.Option) *node {
	t.Helper()
	repo := openPG(t, dsn)
	l := jobspg.NewListener(repo.DB(), jobspg.WithReconnectBackoff(10*time.Millisecond, 20*time.Millisecond))
	base := []jobs.Option{jobs.WithNotifier(l), jobs.WithAllowUnknownKinds(), jobs.WithShutdown(time.Nanosecond, 0),
		jobs.WithPollInterval(never), jobs.WithLeaseDuration(never), jobs.WithRefreshInterval(never)}
	r, err := jobs.NewRunner(repo, append(base, opts...)...)
	require.NoError(t, err)
	return &node{repo: repo, l: l, r: r}
}

// run runs the node's runner until the test ends.
func (n *node) run(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- n.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, n.l.Connected, 10*time.Second, 5*time.Millisecond)
}

// blocker registers kind "block" on n: it reports its start, then waits for
// its context or release, and reports the context's cause.
func (n *node) blocker() (started chan uuid.UUID, causes chan error, release chan struct{}) {
	started, causes, release = make(chan uuid.UUID, 4), make(chan error, 4), make(chan struct{})
	n.r.Handle("block", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		started <- j.ID
		select {
		case <-ctx.Done():
			causes <- context.Cause(ctx)
			return nil, ctx.Err()
		case <-release:
			return json.RawMessage(`"ok"`), nil
		}
	})
	return started, causes, release
}

func TestCrossRunnerEnqueueWakesIdleRunner(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	a, b := newNode(t, dsn), newNode(t, dsn)
	started, _, release := b.blocker()
	defer close(release)
	b.run(t)
	// B polls once an hour: only the NOTIFY of A's insert can start it.
	j, err := a.r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	require.Equal(t, j.ID, <-started)
}

func TestCrossRunnerCancelViaNotify(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	a, b := newNode(t, dsn), newNode(t, dsn)
	started, causes, release := b.blocker()
	defer close(release)
	b.run(t)
	j, err := a.r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	<-started
	_, err = a.r.Cancel(t.Context(), j.ID)
	require.NoError(t, err)
	require.ErrorIs(t, <-causes, jobs.ErrCanceled)
	final, err := a.r.Await(t.Context(), j.ID) // woken by the finish's NOTIFY
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, final.Status)
}

func TestCrossRunnerCancelWhileNotificationsAreDown(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	const refresh = 100 * time.Millisecond
	a := newNode(t, dsn)
	b := &node{repo: openPG(t, dsn)}
	// B's listener, once killed, stays away for a minute.
	b.l = jobspg.NewListener(b.repo.DB(), jobspg.WithReconnectBackoff(time.Minute, time.Minute))
	var err error
	b.r, err = jobs.NewRunner(b.repo, jobs.WithNotifier(b.l), jobs.WithPollInterval(10*time.Millisecond),
		jobs.WithLeaseDuration(time.Minute), jobs.WithRefreshInterval(refresh), jobs.WithShutdown(time.Nanosecond, 0))
	require.NoError(t, err)
	started, causes, release := b.blocker()
	defer close(release)
	b.run(t)
	j, err := a.r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	<-started
	require.Equal(t, 1, terminateListeners(t, b.repo))
	require.Eventually(t, func() bool { return !b.l.Connected() }, 5*time.Second, time.Millisecond)

	begin := time.Now()
	_, err = a.r.Cancel(t.Context(), j.ID)
	require.NoError(t, err)
	require.ErrorIs(t, <-causes, jobs.ErrCanceled)
	took := time.Since(begin)
	t.Logf("cancel landed by polling in %v (refresh interval %v)", took, refresh)
	require.Less(t, took, refresh+time.Second, "the refresh is the fallback")
}

func TestCrossRunnerAwaitFollowsNotifications(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	a, b := newNode(t, dsn), newNode(t, dsn)
	started, _, release := b.blocker()
	b.run(t)
	j, err := a.r.Enqueue(t.Context(), "block", nil)
	require.NoError(t, err)
	<-started
	got := make(chan *jobs.Job, 1)
	go func() {
		// A's refresh interval is an hour: only notifications can end this.
		final, err := a.r.Await(t.Context(), j.ID)
		if err != nil {
			t.Error(err)
		}
		got <- final
	}()
	close(release)
	final := <-got
	require.NotNil(t, final)
	require.Equal(t, jobs.StatusSucceeded, final.Status)
	require.JSONEq(t, `"ok"`, string(final.Result))
}

// TestListenerLeavesPoolOfOneToRunner checks that a listener needs no
// connection of the repository's pool: with a pool of one connection, a
// runner that listens still enqueues, runs and awaits jobs.
func TestListenerLeavesPoolOfOneToRunner(t *testing.T) {
	t.Parallel()
	repo, err := jobspg.Open(t.Context(), testdb.PostgresDSN(t), jobspg.WithMaxOpenConns(1))
	require.NoError(t, err)
	t.Cleanup(func() { _ = repo.Close() })
	l := jobspg.NewListener(repo.DB())
	r, err := jobs.NewRunner(repo, jobs.WithNotifier(l), jobs.WithShutdown(time.Nanosecond, 0),
		jobs.WithPollInterval(never), jobs.WithLeaseDuration(never), jobs.WithRefreshInterval(never))
	require.NoError(t, err)
	r.Handle("k", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
		return json.RawMessage(`"done"`), nil
	})
	n := &node{repo: repo, l: l, r: r}
	n.run(t) // returns once the listener is connected

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	j, err := r.Enqueue(ctx, "k", nil)
	require.NoError(t, err)
	got, err := r.Await(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, got.Status)
	require.True(t, l.Connected())
}
