package jobsotel

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jobsmith/jobs"

	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// instruments are the metrics of the package doc.
type instruments struct {
	enqueued, started, finished metric.Int64Counter
	running                     metric.Int64UpDownCounter
	duration, latency           metric.Float64Histogram
}

// secondsBuckets suit jobs from milliseconds to an hour.
var secondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

func newInstruments(m metric.Meter) (instruments, error) {
	var (
		in   instruments
		errs [6]error
	)
	in.enqueued, errs[0] = m.Int64Counter("jobs.enqueued", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs stored by an enqueue, duplicates not counted."))
	in.started, errs[1] = m.Int64Counter("jobs.started", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts whose handler was called."))
	in.finished, errs[2] = m.Int64Counter("jobs.finished", metric.WithUnit("{attempt}"),
		metric.WithDescription("Ended attempts, by outcome."))
	in.running, errs[3] = m.Int64UpDownCounter("jobs.running", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts running in this process."))
	in.duration, errs[4] = m.Float64Histogram("jobs.attempt.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from an attempt's start to its stored outcome."),
		metric.WithExplicitBucketBoundaries(secondsBuckets...))
	in.latency, errs[5] = m.Float64Histogram("jobs.queue.latency", metric.WithUnit("s"),
		metric.WithDescription("Time from when a job could start (its run-at time, or its creation) to the start of its attempt."),
		metric.WithExplicitBucketBoundaries(secondsBuckets...))
	for _, err := range errs {
		if err != nil {
			return in, fmt.Errorf("jobsotel: create instruments: %w", err)
		}
	}
	return in, nil
}

// How often and how long the jobs.pending gauge may ask for stats.
const (
	statsInterval = 10 * time.Second
	statsTimeout  = 5 * time.Second
)

// depth feeds the jobs.pending gauge from a stats function, cached.
type depth struct {
	stats func(context.Context) (*jobs.Stats, error)

	mu      sync.Mutex // guards the fields below; held during a stats call, so calls never overlap
	pending map[string]int64
	at      time.Time // of the last stats call, successful or not
}

func (d *depth) register(m metric.Meter) (metric.Registration, error) {
	g, err := m.Int64ObservableGauge("jobs.pending", metric.WithUnit("{job}"),
		metric.WithDescription("Pending jobs per queue, those waiting for their run-at time included."))
	if err != nil {
		return nil, fmt.Errorf("jobsotel: create instruments: %w", err)
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		pending, err := d.get(ctx)
		for q, n := range pending {
			o.ObserveInt64(g, n, metric.WithAttributes(semconv.MessagingDestinationName(q)))
		}
		return err
	}, g)
	if err != nil {
		return nil, fmt.Errorf("jobsotel: register the jobs.pending callback: %w", err)
	}
	return reg, nil
}

// get returns the pending jobs per queue, calling stats when the last
// call is older than statsInterval; after a failed call it returns the
// last counts with the error.
func (d *depth) get(ctx context.Context) (map[string]int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && time.Since(d.at) < statsInterval {
		return d.pending, nil
	}
	d.at = time.Now()
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	s, err := d.stats(ctx)
	if err != nil {
		return d.pending, fmt.Errorf("jobsotel: stats for jobs.pending: %w", err)
	}
	pending := make(map[string]int64, len(s.ByQueue))
	for q, byStatus := range s.ByQueue {
		pending[q] = int64(byStatus[jobs.StatusPending])
	}
	d.pending = pending
	return pending, nil
}
