package jobspg_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/stretchr/testify/require"
)

func TestChannel(t *testing.T) {
	t.Parallel()
	require.Equal(t, "jobs:public", jobspg.Channel("public"))
	long := strings.Repeat("s", 63)
	sum := md5.Sum([]byte(long))
	require.Equal(t, "jobs:"+hex.EncodeToString(sum[:]), jobspg.Channel(long))
}

// TestListenerLongSchemaName checks that the triggers and Channel agree on
// the channel of a schema whose name is too long to be part of it.
func TestListenerLongSchemaName(t *testing.T) {
	t.Parallel()
	base := testdb.PostgresDSN(t) // a schema of the test's own, for cleanup
	long := "long_" + strings.ReplaceAll(uuid.NewString(), "-", "") + strings.Repeat("x", 26)
	require.Len(t, long, 63)
	admin := openPG(t, base)
	_, err := admin.DB().ExecContext(t.Context(), "CREATE SCHEMA "+long)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.DB().Exec("DROP SCHEMA " + long + " CASCADE") })
	repo := openPG(t, testdb.WithSearchPath(base, long))
	ch := events(t, jobspg.NewListener(repo.DB()))
	next(t, ch, resync)
	require.NoError(t, repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	next(t, ch, ready)
}

// events subscribes to l and returns the channel of its events.
func events(t *testing.T, l *jobspg.Listener) <-chan jobs.Event {
	t.Helper()
	ch := make(chan jobs.Event, 1024)
	stop := l.Subscribe(func(ev jobs.Event) {
		select {
		case ch <- ev:
		default:
			t.Errorf("event buffer full")
		}
	})
	t.Cleanup(stop)
	return ch
}

// hint is a kind of event that next waits for.
type hint struct {
	name string
	is   func(jobs.Event) bool
}

var (
	resync   = hint{"resync", func(ev jobs.Event) bool { return ev.Resync }}
	ready    = hint{"ready", func(ev jobs.Event) bool { return ev.Ready }}
	canceled = hint{"canceled", func(ev jobs.Event) bool { return len(ev.Canceled) > 0 }}
	changed  = hint{"changed", func(ev jobs.Event) bool { return len(ev.Changed) > 0 }}
)

// next returns the next event of the given kind, skipping others.
func next(t *testing.T, ch <-chan jobs.Event, kind hint) jobs.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if kind.is(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 10s", kind.name)
		}
	}
}

func openPG(t testing.TB, dsn string) *jobsbun.Repository {
	t.Helper()
	repo, err := jobspg.Open(t.Context(), dsn, jobspg.WithMaxOpenConns(4))
	require.NoError(t, err)
	t.Cleanup(func() { _ = repo.Close() })
	return repo
}

func TestListenerDeliversTriggerEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo := openPG(t, testdb.PostgresDSN(t))
	l := jobspg.NewListener(repo.DB())
	ch := events(t, l)
	next(t, ch, resync) // connected
	require.True(t, l.Connected())

	js := make([]*jobs.Job, 3)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
	}
	require.NoError(t, repo.Create(ctx, js...))
	next(t, ch, ready)

	claimed, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 3, LeaseDuration: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, 3)

	_, err = repo.RequestCancel(ctx, claimed[0].ID)
	require.NoError(t, err)
	ev := next(t, ch, canceled)
	require.Equal(t, jobs.Event{Canceled: []uuid.UUID{claimed[0].ID}}, ev)

	// One Finish of two jobs is one notification naming both.
	require.NoError(t, repo.Finish(ctx,
		jobs.Completion{Lease: claimed[1].Lease(), Status: jobs.StatusSucceeded},
		jobs.Completion{Lease: claimed[2].Lease(), Status: jobs.StatusFailed, Error: "x"}))
	ev = next(t, ch, changed)
	require.ElementsMatch(t, []uuid.UUID{claimed[1].ID, claimed[2].ID}, ev.Changed)
	require.Equal(t, jobs.Event{Changed: ev.Changed}, ev, "nothing but the change")

	// A release is a change (this one ends canceled: a cancel was requested).
	require.ErrorIs(t, repo.Release(ctx, claimed[0].Lease()), jobs.ErrCanceled)
	ev = next(t, ch, changed)
	require.Equal(t, jobs.Event{Changed: []uuid.UUID{claimed[0].ID}}, ev)
}

// TestListenerHearsNewOutput checks that a checkpoint save that appends
// output without changing the progress is a change, as a progress change
// is, so that followers of the output in other processes wake at once.
func TestListenerHearsNewOutput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo := openPG(t, testdb.PostgresDSN(t))
	ch := events(t, jobspg.NewListener(repo.DB()))
	next(t, ch, resync)
	require.NoError(t, repo.Create(ctx, &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	claimed, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 1, LeaseDuration: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: claimed[0].Lease(),
		Checkpoint: json.RawMessage(`1`), Output: []json.RawMessage{json.RawMessage(`"line"`)}}))
	ev := next(t, ch, changed)
	require.Equal(t, jobs.Event{Changed: []uuid.UUID{claimed[0].ID}}, ev)
}

func TestListenerSchemasDoNotHearEachOther(t *testing.T) {
	t.Parallel()
	a := openPG(t, testdb.PostgresDSN(t))
	b := openPG(t, testdb.PostgresDSN(t))
	ch := events(t, jobspg.NewListener(a.DB()))
	next(t, ch, resync)
	require.NoError(t, b.Create(t.Context(), &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	require.NoError(t, a.Create(t.Context(), &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	next(t, ch, ready)
	select {
	case ev := <-ch:
		t.Fatalf("one insert in this schema gave a second event %v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestListenerTooManyJobsIsResync(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo := openPG(t, testdb.PostgresDSN(t))
	ch := events(t, jobspg.NewListener(repo.DB()))
	next(t, ch, resync)
	js := make([]*jobs.Job, 300) // 300 IDs do not fit in one payload
	for i := range js {
		js[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}
	}
	require.NoError(t, repo.Create(ctx, js...))
	claimed, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "o", Limit: 300, LeaseDuration: time.Minute})
	require.NoError(t, err)
	cs := make([]jobs.Completion, len(claimed))
	for i, j := range claimed {
		cs[i] = jobs.Completion{Lease: j.Lease(), Status: jobs.StatusSucceeded}
	}
	require.NoError(t, repo.Finish(ctx, cs...))
	next(t, ch, resync)
}

// terminateListeners ends the server sessions LISTENing in the test's
// schema and returns how many it ended.
func terminateListeners(t *testing.T, repo *jobsbun.Repository) int {
	t.Helper()
	var n int
	require.NoError(t, repo.DB().QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN "jobs:' || current_schema() || '"%' AND pid <> pg_backend_pid()`).Scan(&n))
	return n
}

func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo := openPG(t, testdb.PostgresDSN(t))
	l := jobspg.NewListener(repo.DB(), jobspg.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
	ch := events(t, l)
	next(t, ch, resync)
	require.Equal(t, 1, terminateListeners(t, repo))
	// Back: a resync says that events may have been missed meanwhile.
	next(t, ch, resync)
	require.True(t, l.Connected())
	require.NoError(t, repo.Create(ctx, &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	next(t, ch, ready)
}

func TestListenerPingsIdleConnection(t *testing.T) {
	t.Parallel()
	repo := openPG(t, testdb.PostgresDSN(t))
	l := jobspg.NewListener(repo.DB(), jobspg.WithPingInterval(20*time.Millisecond))
	ch := events(t, l)
	next(t, ch, resync)
	// Several quiet ping intervals pass without a reconnect.
	require.Never(t, func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}, 200*time.Millisecond, 20*time.Millisecond)
	require.True(t, l.Connected())
}

func TestListenerSharedConnectionStopsWithLastSubscriber(t *testing.T) {
	t.Parallel()
	repo := openPG(t, testdb.PostgresDSN(t))
	l := jobspg.NewListener(repo.DB())
	got := make(chan jobs.Event, 16)
	stop1 := l.Subscribe(func(ev jobs.Event) { got <- ev })
	stop2 := l.Subscribe(func(jobs.Event) {})
	next(t, got, resync)
	stop1()
	stop1() // harmless
	require.True(t, l.Connected(), "still listening for the other subscriber")
	stop2()
	require.False(t, l.Connected())
	// Nothing is delivered after unsubscribe, and the goroutine is gone
	// (goleak in TestMain checks that).
	require.NoError(t, repo.Create(t.Context(), &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	select {
	case ev := <-got:
		t.Fatalf("event after unsubscribe: %v", ev)
	case <-time.After(50 * time.Millisecond):
	}
	// A new subscriber starts listening again.
	ch := events(t, l)
	next(t, ch, resync)
}

func TestListenerWithoutServerKeepsRetrying(t *testing.T) {
	t.Parallel()
	repo := openPG(t, testdb.PostgresDSN(t))
	// Bounds the wait for the connection only: on a loaded machine opening
	// and migrating the schema above has taken more than 5 s.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// A pool of one connection, held by the test: the listener cannot get
	// a connection and must not block Subscribe or its unsubscribe.
	repo.DB().SetMaxOpenConns(1)
	conn, err := repo.DB().Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	l := jobspg.NewListener(repo.DB(), jobspg.WithReconnectBackoff(5*time.Millisecond, 10*time.Millisecond))
	stop := l.Subscribe(func(jobs.Event) {})
	require.Never(t, l.Connected, 100*time.Millisecond, 10*time.Millisecond)
	stop()
}

// TestListenerCreateTxNotifiesOnCommit checks that a job created in the
// caller's transaction is announced when, and only if, it commits.
func TestListenerCreateTxNotifiesOnCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo := openPG(t, testdb.PostgresDSN(t))
	ch := events(t, jobspg.NewListener(repo.DB()))
	next(t, ch, resync)
	quiet := func(what string) {
		t.Helper()
		select {
		case ev := <-ch:
			t.Fatalf("%s: unexpected event %v", what, ev)
		case <-time.After(100 * time.Millisecond):
		}
	}

	tx, err := repo.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, repo.CreateTx(ctx, tx, &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	quiet("before commit")
	require.NoError(t, tx.Rollback())
	quiet("after rollback")

	tx, err = repo.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, repo.CreateTx(ctx, tx, &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`)}))
	require.NoError(t, tx.Commit())
	next(t, ch, ready)
}
