package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startApp(t *testing.T) *app {
	t.Helper()
	a, err := newApp(t.Context(), filepath.Join(t.TempDir(), "embed.db"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, a.db.Close())
	})
	return a
}

func TestOrderAndReceiptCommitTogether(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	ts := httptest.NewServer(a.routes())
	defer ts.Close()

	res, err := http.Post(ts.URL+"/orders?item=book", "", nil)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var order Order
	require.NoError(t, json.NewDecoder(res.Body).Decode(&order))
	require.Equal(t, "book", order.Item)

	msg, job, err := jobs.AwaitResult[string](t.Context(), a.runner, uuid.MustParse(order.ReceiptID))
	require.NoError(t, err)
	require.Equal(t, jobs.StatusSucceeded, job.Status)
	require.Equal(t, "receipt for order 1 (book) sent", msg)

	res2, err := http.Get(ts.URL + "/orders/1")
	require.NoError(t, err)
	defer res2.Body.Close()
	var got struct {
		Order   Order    `json:"order"`
		Receipt jobs.Job `json:"receipt"`
	}
	require.NoError(t, json.NewDecoder(res2.Body).Decode(&got))
	require.Equal(t, order.ID, got.Order.ID)
	require.Equal(t, jobs.StatusSucceeded, got.Receipt.Status)

	for path, want := range map[string]int{"/orders?item=": 400, "/orders/x": 405} {
		res, err := http.Post(ts.URL+path, "", nil)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, want, res.StatusCode, path)
	}
	res3, err := http.Get(ts.URL + "/orders/99")
	require.NoError(t, err)
	res3.Body.Close()
	require.Equal(t, http.StatusNotFound, res3.StatusCode)
}

// TestRollbackTakesTheJobWithIt: when the transaction fails after the
// enqueue, neither the order nor its job exists.
func TestRollbackTakesTheJobWithIt(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	ctx := t.Context()
	boom := errors.New("payment declined")
	var jobID uuid.UUID
	err := jobsbun.RunInTx(ctx, a.db, func(ctx context.Context, tx bun.Tx) error {
		order := &Order{Item: "lamp", CreatedAt: time.Now()}
		if _, err := tx.NewInsert().Model(order).Exec(ctx); err != nil {
			return err
		}
		job, err := a.runner.EnqueueTx(ctx, tx, "send_receipt", Receipt{OrderID: order.ID, Item: order.Item})
		if err != nil {
			return err
		}
		jobID = job.ID
		return boom
	})
	require.ErrorIs(t, err, boom)
	n, err := a.db.NewSelect().Model((*Order)(nil)).Count(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = a.runner.Get(ctx, jobID)
	require.ErrorIs(t, err, jobs.ErrNotFound)
}

func TestServeStopsOnContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, filepath.Join(t.TempDir(), "embed.db")) }()
	res, err := http.Post("http://"+ln.Addr().String()+"/orders?item=pen", "", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	cancel()
	require.NoError(t, <-done)
	_, err = http.Post("http://"+ln.Addr().String()+"/orders?item=pen", "", nil)
	require.Error(t, err, "stopped accepting")
}
