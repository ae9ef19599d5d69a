package jobsotel_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsotel"
	"github.com/stretchr/testify/require"
)

func TestNewRefusesNilProviders(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]jobsotel.Option{
		"tracer provider": jobsotel.WithTracerProvider(nil),
		"meter provider":  jobsotel.WithMeterProvider(nil),
		"propagator":      jobsotel.WithPropagator(nil),
	} {
		_, err := jobsotel.New(o)
		require.ErrorContains(t, err, name+" is nil")
	}
}

func TestCloseUnregistersTheGauge(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	p := newProcess(t, jobsotel.WithStats(func(context.Context) (*jobs.Stats, error) {
		calls.Add(1)
		return &jobs.Stats{}, nil
	}))
	p.metrics(t)
	require.EqualValues(t, 1, calls.Load())
	require.NoError(t, p.tel.Close())
	require.NoError(t, p.tel.Close(), "a second Close does nothing")
	_, ok := p.metrics(t)["jobs.pending"]
	require.False(t, ok, "no gauge after Close")
}
