package jobsotel

import (
	"context"
	"errors"
	"sync"

	"github.com/jobsmith/jobs"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of the tracer and the meter.
const scope = "github.com/jobsmith/jobs/jobsotel"

// Option configures [New].
type Option func(*config)

type config struct {
	tp    trace.TracerProvider
	mp    metric.MeterProvider
	prop  propagation.TextMapPropagator
	stats func(context.Context) (*jobs.Stats, error)
}

// WithTracerProvider sets where spans go. The default is the global one
// ([otel.GetTracerProvider]), which follows a provider set later with
// otel.SetTracerProvider; nil is invalid.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets where metrics go. The default is the global one
// ([otel.GetMeterProvider]), which follows a provider set later with
// otel.SetMeterProvider; nil is invalid.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagator sets how trace context is written to and read from a
// job's metadata. The default is the global one
// ([otel.GetTextMapPropagator]) when one was set before [New] runs, and
// otherwise W3C trace context and baggage (the global one propagates
// nothing until set); nil is invalid.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithStats enables the jobs.pending gauge: stats, such as the
// repository's or the runner's Stats method, is called when metrics are
// collected, at most once every 10s (a collection in between reports the
// last counts), and is given at most 5s. Each call counts every stored job
// (jobsbun: one GROUP BY over the jobs table), which is why it is not
// called more often. The default is nil: no gauge.
func WithStats(stats func(context.Context) (*jobs.Stats, error)) Option {
	return func(c *config) { c.stats = stats }
}

// Telemetry holds the tracer, the instruments and the propagator that the
// hooks of [Telemetry.Option] use. It is safe for concurrent use, and one
// Telemetry may serve several runners.
type Telemetry struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	inst   instruments
	depth  *depth              // nil without WithStats
	reg    metric.Registration // of the gauge's callback; nil without WithStats

	closeOnce sync.Once
}

// New returns a Telemetry configured by opts, with its instruments created.
// It returns an error when an option is nil-valued or the meter refuses an
// instrument.
func New(opts ...Option) (*Telemetry, error) {
	c := config{tp: otel.GetTracerProvider(), mp: otel.GetMeterProvider(), prop: otel.GetTextMapPropagator()}
	if len(c.prop.Fields()) == 0 {
		c.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	switch {
	case c.tp == nil:
		return nil, errors.New("jobsotel: tracer provider is nil")
	case c.mp == nil:
		return nil, errors.New("jobsotel: meter provider is nil")
	case c.prop == nil:
		return nil, errors.New("jobsotel: propagator is nil")
	}
	t := &Telemetry{tracer: c.tp.Tracer(scope), prop: c.prop}
	meter := c.mp.Meter(scope)
	var err error
	if t.inst, err = newInstruments(meter); err != nil {
		return nil, err
	}
	if c.stats != nil {
		t.depth = &depth{stats: c.stats}
		if t.reg, err = t.depth.register(meter); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Option returns the runner option that installs the telemetry's hooks
// ([jobs.Hooks] OnEnqueue and OnAttempt) beside any others.
func (t *Telemetry) Option() jobs.Option {
	return jobs.WithHooks(jobs.Hooks{OnEnqueue: t.onEnqueue, OnAttempt: t.onAttempt})
}

// Close unregisters the jobs.pending gauge's callback, so that a meter
// provider that outlives t no longer calls the stats function. The hooks
// keep working. It returns the meter's error, and nil when there is no
// gauge or on later calls.
func (t *Telemetry) Close() error {
	var err error
	t.closeOnce.Do(func() {
		if t.reg != nil {
			err = t.reg.Unregister()
		}
	})
	return err
}
