package jobsbun

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jobsmith/jobs"

	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// eachTestBackend runs f on a fresh SQLite repository and, when the
// PostgreSQL DSN is set, a fresh PostgreSQL one.
func eachTestBackend(t *testing.T, f func(t *testing.T, r *Repository)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, openTestSQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		sqldb, err := sql.Open("pgx", testdb.PostgresDSN(t))
		require.NoError(t, err)
		db := bun.NewDB(sqldb, pgdialect.New())
		t.Cleanup(func() { db.Close() })
		r, err := New(t.Context(), db)
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		f(t, r)
	})
}

// prepared returns n jobs with IDs assigned, as Create assigns them before
// it writes, but not stored.
func prepared(t *testing.T, n int, key string) []*jobs.Job {
	js := make([]*jobs.Job, n)
	for i := range js {
		js[i] = &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`), UniqueKey: key}
		require.NoError(t, js[i].Prepare(rules.Now(), rules.MaxPayloadBytes))
	}
	return js
}

// TestConfirmCreate checks each answer of the read that settles a write in
// doubt.
func TestConfirmCreate(t *testing.T) {
	t.Parallel()
	writeErr := errors.New("unexpected EOF")
	eachTestBackend(t, func(t *testing.T, r *Repository) {
		ctx := t.Context()
		// Stored: confirmed, even with a context that has ended.
		stored := []*jobs.Job{{Kind: "k", Payload: json.RawMessage(`1`)}, {Kind: "k", Payload: json.RawMessage(`2`)}}
		require.NoError(t, r.Create(ctx, stored...))
		done, cancel := context.WithCancel(ctx)
		cancel()
		dups, err := r.confirmCreate(done, "create", stored, writeErr)
		require.NoError(t, err)
		require.Empty(t, dups)

		// Stored, with a job whose unique key was taken: it becomes a
		// duplicate of the job holding the key.
		holder := &jobs.Job{Kind: "k", Payload: json.RawMessage(`{}`), UniqueKey: "taken"}
		require.NoError(t, r.Create(ctx, holder))
		mixed := []*jobs.Job{{Kind: "k", Payload: json.RawMessage(`3`)}, prepared(t, 1, "taken")[0]}
		require.NoError(t, r.Create(ctx, mixed[0]))
		dups, err = r.confirmCreate(ctx, "create", mixed, writeErr)
		require.NoError(t, err)
		require.Len(t, dups, 1)
		require.Equal(t, holder.ID, dups[1].ID)

		// Not stored: the write's error on SQLite; on PostgreSQL the server
		// may still commit a statement it was running, so nobody can tell.
		missing := prepared(t, 3, "")
		_, err = r.confirmCreate(ctx, "create", missing, writeErr)
		if r.d.pg {
			require.ErrorIs(t, err, jobs.ErrOutcomeUnknown)
		} else {
			require.Equal(t, jobs.ErrUnavailable, jobs.CodeOf(err))
			require.NotErrorIs(t, err, jobs.ErrOutcomeUnknown)
		}
		require.ErrorIs(t, err, writeErr)

		// The read fails: unknown, with both causes.
		require.NoError(t, r.db.Close())
		_, err = r.confirmCreate(ctx, "create", missing, writeErr)
		require.ErrorIs(t, err, jobs.ErrOutcomeUnknown)
		require.ErrorIs(t, err, writeErr)
		require.NotErrorIs(t, err, jobs.ErrUnavailable, "callers must not take it for a plain failure")
		require.Contains(t, err.Error(), "database is closed")
	})
}

// TestCreateWithoutGraceConfirmsInterruptedWrites cuts writes short when the
// caller's deadline ends (no grace), as Create did before it waited writes
// out, so that deadlines interrupt statements and COMMITs under way: the
// read-back must still keep every nil error stored and every plain error
// not stored.
func TestCreateWithoutGraceConfirmsInterruptedWrites(t *testing.T) {
	t.Parallel()
	eachTestBackend(t, func(t *testing.T, r *Repository) {
		r.writeGrace = 0
		// PostgreSQL's writes take longer; its pool dials anew for each
		// connection that a deadline ends during a statement.
		calls, step := 1000, 100*time.Microsecond
		if r.d.pg {
			calls, step = 120, 500*time.Microsecond
		}
		errs := make([]error, calls)
		js := make([][]*jobs.Job, calls)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < calls; i += 8 {
					js[i] = []*jobs.Job{{Kind: "k", Payload: json.RawMessage(fmt.Sprint(i))}}
					switch i % 3 {
					case 1:
						js[i] = append(js[i], &jobs.Job{Kind: "k", Payload: json.RawMessage(fmt.Sprint(i))})
					case 2:
						js[i][0].UniqueKey = fmt.Sprint(i)
					}
					ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%41)*step)
					errs[i] = r.Create(ctx, js[i]...)
					cancel()
				}
			})
		}
		wg.Wait()
		var n int
		require.NoError(t, r.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM jobs").Scan(&n))
		want, unknown := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				want += len(js[i])
				for _, j := range js[i] {
					_, err := r.Get(t.Context(), j.ID)
					require.NoError(t, err, "call %d returned nil", i)
				}
			case errors.Is(err, jobs.ErrOutcomeUnknown):
				unknown += len(js[i])
			default:
				require.ErrorIs(t, err, context.DeadlineExceeded, "call %d", i)
			}
		}
		require.GreaterOrEqual(t, n, want, "a nil error means stored")
		require.LessOrEqual(t, n, want+unknown, "a plain error means not stored")
		t.Logf("%d jobs stored: %d confirmed, %d of unknown outcome", n, want, unknown)
	})
}

func TestAfterGrace(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const grace = time.Second
		// A deadline: the write context ends grace after it.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		w, stop := afterGrace(ctx, grace)
		d, ok := w.Deadline()
		require.True(t, ok)
		want, _ := ctx.Deadline()
		require.Equal(t, want.Add(grace), d)
		cancel()
		require.NoError(t, w.Err(), "cancelling ctx does not cancel the write")
		stop()
		require.Error(t, w.Err())

		// No deadline: grace after ctx is canceled.
		ctx, cancel = context.WithCancel(t.Context())
		w, stop = afterGrace(ctx, grace)
		defer stop()
		start := time.Now()
		cancel()
		synctest.Wait()
		require.NoError(t, w.Err())
		<-w.Done()
		require.Equal(t, grace, time.Since(start))
		require.ErrorIs(t, w.Err(), context.Canceled)

		// Stopped before ctx ends: nothing is left running.
		ctx, cancel = context.WithCancel(t.Context())
		w, stop = afterGrace(ctx, grace)
		stop()
		require.Error(t, w.Err())
		cancel()
	})
}
