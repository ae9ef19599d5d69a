package jobsotel_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsotel"
	"github.com/stretchr/testify/require"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// histCount returns how many values a float64 histogram recorded.
func histCount(t *testing.T, a metricdata.Aggregation) uint64 {
	t.Helper()
	h, ok := a.(metricdata.Histogram[float64])
	require.True(t, ok, "%T is a float64 histogram", a)
	var n uint64
	for _, dp := range h.DataPoints {
		n += dp.Count
	}
	return n
}

func TestMetricsCountJobsByOutcome(t *testing.T) {
	t.Parallel()
	repo := jobs.NewMemoryRepository()
	var statsCalls atomic.Int32
	p := newProcess(t, jobsotel.WithStats(func(ctx context.Context) (*jobs.Stats, error) {
		statsCalls.Add(1)
		return repo.Stats(ctx)
	}))
	r := newRunner(t, repo, p.tel.Option())
	r.Handle("ok", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) { return nil, nil })
	r.Handle("bad", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
		return nil, errors.New("bad")
	})
	running := make(chan struct{})
	r.Handle("wait", func(ctx context.Context, _ *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		close(running)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx := t.Context()
	// Two jobs that wait an hour, in queues of their own: the gauge's.
	for _, q := range []string{"later", "later", "nightly"} {
		_, err := r.Enqueue(ctx, "ok", nil, jobs.InQueue(q), jobs.WithRunAt(time.Now().Add(time.Hour)))
		require.NoError(t, err)
	}
	stop := start(t, r)
	ok, err := r.Enqueue(ctx, "ok", nil)
	require.NoError(t, err)
	bad, err := r.Enqueue(ctx, "bad", nil, jobs.WithMaxAttempts(2))
	require.NoError(t, err)
	await(t, r, ok)
	await(t, r, bad)
	wait, err := r.Enqueue(ctx, "wait", nil)
	require.NoError(t, err)
	<-running
	// Await returns once the outcome is stored; the hooks that end an
	// attempt's metrics run just after, so the gauge is read until bad's
	// attempt has left it.
	require.Eventually(t, func() bool {
		var rm metricdata.ResourceMetrics
		if p.reader.Collect(ctx, &rm) != nil {
			return false
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "jobs.running" {
					byKind := map[string]int64{}
					for _, dp := range s.DataPoints {
						v, _ := dp.Attributes.Value("messaging.jobs.kind")
						byKind[v.Emit()] += dp.Value
					}
					return reflect.DeepEqual(map[string]int64{"wait": 1}, nonZero(byKind))
				}
			}
		}
		return false
	}, 10*time.Second, time.Millisecond, "the running attempt, and only it")
	_, err = r.Cancel(ctx, wait.ID)
	require.NoError(t, err)
	await(t, r, wait)
	stop()

	m := p.metrics(t)
	require.Equal(t, map[string]int64{"ok": 4, "bad": 1, "wait": 1}, sums(t, m["jobs.enqueued"], "messaging.jobs.kind"))
	require.Equal(t, map[string]int64{"ok": 1, "bad": 2, "wait": 1}, sums(t, m["jobs.started"], "messaging.jobs.kind"))
	require.Equal(t, map[string]int64{"succeeded": 1, "retrying": 1, "failed": 1, "canceled": 1},
		sums(t, m["jobs.finished"], "messaging.jobs.outcome"))
	require.Empty(t, nonZero(sums(t, m["jobs.running"], "messaging.jobs.kind")), "nothing runs any more")
	require.EqualValues(t, 4, histCount(t, m["jobs.attempt.duration"]))
	require.EqualValues(t, 4, histCount(t, m["jobs.queue.latency"]))

	pending := m["jobs.pending"].(metricdata.Gauge[int64])
	byQueue := map[string]int64{}
	for _, dp := range pending.DataPoints {
		q, _ := dp.Attributes.Value("messaging.destination.name")
		byQueue[q.AsString()] = dp.Value
	}
	require.Equal(t, map[string]int64{"later": 2, "nightly": 1, "default": 0}, byQueue)
	require.EqualValues(t, 1, statsCalls.Load(), "two collections within 10s ask for stats once")
}

// nonZero drops the zero values of m.
func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
