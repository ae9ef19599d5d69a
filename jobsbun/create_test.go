package jobsbun_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

func TestBunCreateUniqueKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		a := newJob("k", 1)
		a.UniqueKey = "key-1"
		require.NoError(t, repo.Create(ctx, a))
		require.False(t, a.Duplicate)
		b, c, d := newJob("k", 2), newJob("k", 3), newJob("k", 4)
		b.UniqueKey, c.UniqueKey = "key-1", "key-2"
		d.UniqueKey = "key-2"
		require.NoError(t, repo.Create(ctx, b, c, d))
		require.True(t, b.Duplicate)
		require.Equal(t, a.ID, b.ID)
		require.JSONEq(t, "1", string(b.Payload))
		require.False(t, c.Duplicate)
		require.True(t, d.Duplicate)
		require.Equal(t, c.ID, d.ID)
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, st.Total)
	})
}

func TestBunCreateTx(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		boom := errors.New("boom")
		j := newJob("k", 1)
		err := jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
			require.NoError(t, repo.CreateTx(ctx, tx, j))
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = repo.Get(ctx, j.ID)
		require.ErrorIs(t, err, jobs.ErrNotFound, "rolled back")

		require.Panics(t, func() {
			_ = jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
				require.NoError(t, repo.CreateTx(ctx, tx, newJob("k", 2)))
				panic("handler bug")
			})
		})
		k := newJob("k", 3)
		require.NoError(t, jobsbun.RunInTx(ctx, repo.DB(), func(ctx context.Context, tx bun.Tx) error {
			return repo.CreateTx(ctx, tx, k)
		}))
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, st.Total)
		_, err = repo.Get(ctx, k.ID)
		require.NoError(t, err)
	})
}

func TestBunBadInput(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		long := strings.Repeat("x", rules.MaxNameLength+1)
		for name, j := range map[string]*jobs.Job{
			"invalid json":  {Kind: "k", Payload: []byte("{nope")},
			"empty kind":    {Kind: ""},
			"long kind":     {Kind: long},
			"long queue":    {Kind: "k", Queue: long},
			"neg attempts":  {Kind: "k", MaxAttempts: -1},
			"neg timeout":   {Kind: "k", Timeout: -time.Second},
			"preset id":     {Kind: "k", ID: uuid.New()},
			"nul in kind":   {Kind: "a\x00b"},
			"bad utf8 kind": {Kind: "a\xffb"},
		} {
			good := newJob("k", 1)
			err := repo.Create(ctx, good, j)
			require.ErrorIs(t, err, jobs.ErrInvalidArgument, name)
			require.Equal(t, uuid.Nil, good.ID, "%s: the batch is untouched", name)
		}
		big := &jobs.Job{Kind: "k", Payload: []byte(`"` + strings.Repeat("a", rules.MaxPayloadBytes) + `"`)}
		require.ErrorIs(t, repo.Create(ctx, big), jobs.ErrTooLarge)
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Total, "nothing written")

		weird := "it's \"quoted\"; -- comment ? ?0 ?name $1 \t\r\n\x01\x1f 🙂 \\"
		j := &jobs.Job{Kind: weird, Queue: weird, UniqueKey: weird, Payload: json.RawMessage(`{"s":` + mustJSON(weird) + `}`)}
		require.NoError(t, repo.Create(ctx, j))
		got, err := repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, weird, got.Kind)
		require.Equal(t, weird, got.Queue)
		require.Equal(t, weird, got.UniqueKey)
		require.JSONEq(t, string(j.Payload), string(got.Payload))
		cl, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: weird, Queues: []string{weird}, Kinds: []string{weird}, Limit: 5, LeaseDuration: time.Minute})
		require.NoError(t, err)
		require.Len(t, cl, 1)
		require.Equal(t, weird, cl[0].LeaseOwner)
		require.NoError(t, repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: cl[0].Lease(), Progress: jobs.Progress{Fraction: 0.5, Message: weird}}))
		require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: cl[0].Lease(), Status: jobs.StatusFailed, Error: weird + "\x00\xff"}))
		got, err = repo.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, weird, got.Progress.Message)
		require.Equal(t, weird+"\uFFFD\uFFFD", got.Error)
		require.Len(t, got.Errors, 1)
		require.Equal(t, got.Error, got.Errors[0].Error)

		err = repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: cl[0].Lease(), Progress: jobs.Progress{Message: "a\x00b"}})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument, "NUL in a message")
		for _, p := range []float64{-0.1, 1.1} {
			err := repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{Lease: cl[0].Lease(), Progress: jobs.Progress{Fraction: p}})
			require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		}
		_, err = repo.Claim(ctx, jobs.ClaimQuery{Owner: "w", Limit: 0, LeaseDuration: time.Second})
		require.ErrorIs(t, err, jobs.ErrInvalidArgument)
		_, err = repo.RequestCancel(ctx, uuid.New())
		require.ErrorIs(t, err, jobs.ErrNotFound)
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// CreateTx takes only a transaction: a *bun.DB, a bun.Conn or an unstarted
// bun.Tx would write outside the caller's transaction, so each is refused
// and nothing is written; a *bun.Tx works like a bun.Tx.
func TestCreateTxTakesOnlyATransaction(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, repo *jobsbun.Repository) {
		ctx := t.Context()
		conn, err := repo.DB().Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		for _, tx := range []any{repo.DB(), conn, bun.Tx{}, (*bun.Tx)(nil), repo.DB().DB} {
			err := repo.CreateTx(ctx, tx, newJob("k", 1))
			require.ErrorIs(t, err, jobs.ErrInvalidArgument, "%T", tx)
		}
		st, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Total)

		tx, err := repo.DB().BeginTx(ctx, nil)
		require.NoError(t, err)
		j := newJob("k", 2)
		require.NoError(t, repo.CreateTx(ctx, &tx, j))
		require.NoError(t, tx.Commit())
		_, err = repo.Get(ctx, j.ID)
		require.NoError(t, err)
	})
}
