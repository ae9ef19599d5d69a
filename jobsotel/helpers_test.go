package jobsotel_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsotel"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// process is one process's telemetry: its own tracer and meter providers,
// recorded in memory.
type process struct {
	tp     *sdktrace.TracerProvider
	tel    *jobsotel.Telemetry
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newProcess(t *testing.T, opts ...jobsotel.Option) *process {
	t.Helper()
	p := &process{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.spans))
	p.tp = tp
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(p.reader))
	t.Cleanup(func() {
		require.NoError(t, tp.Shutdown(context.Background()))
		require.NoError(t, mp.Shutdown(context.Background()))
	})
	tel, err := jobsotel.New(append([]jobsotel.Option{jobsotel.WithTracerProvider(tp), jobsotel.WithMeterProvider(mp)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Close()) })
	p.tel = tel
	return p
}

// span returns the one ended span with the given name.
func (p *process) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	found := p.spansNamed(name)
	require.Len(t, found, 1, "spans named %q", name)
	return found[0]
}

// spansNamed returns the ended spans with the given name, in end order.
func (p *process) spansNamed(name string) []sdktrace.ReadOnlySpan {
	var found []sdktrace.ReadOnlySpan
	for _, s := range p.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	return found
}

// metrics collects the process's metrics by name.
func (p *process) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, p.reader.Collect(t.Context(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sums returns an int64 sum's values keyed by the value of key ("" for all
// points together when key is "").
func sums(t *testing.T, a metricdata.Aggregation, key attribute.Key) map[string]int64 {
	t.Helper()
	s, ok := a.(metricdata.Sum[int64])
	require.True(t, ok, "%T is an int64 sum", a)
	out := map[string]int64{}
	for _, dp := range s.DataPoints {
		v, _ := dp.Attributes.Value(key)
		out[v.Emit()] += dp.Value
	}
	return out
}

// attr returns the value of key among a span's attributes.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// openSQLite opens the SQLite file path, closed when the test ends.
func openSQLite(t *testing.T, path string) jobs.JobRepository {
	t.Helper()
	repo, err := jobsqlite.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = repo.Close() })
	return repo
}

// tempDB returns the path of a new SQLite file.
func tempDB(t *testing.T) string { return filepath.Join(t.TempDir(), "jobs.db") }

// newRunner returns a runner with fast test timings.
func newRunner(t *testing.T, repo jobs.JobRepository, opts ...jobs.Option) *jobs.Runner {
	t.Helper()
	base := []jobs.Option{
		jobs.WithPollInterval(10 * time.Millisecond),
		jobs.WithRefreshInterval(10 * time.Millisecond),
		jobs.WithRetryBackoff(time.Millisecond, 5*time.Millisecond),
		jobs.WithShutdown(time.Second, 0),
	}
	r, err := jobs.NewRunner(repo, append(base, opts...)...)
	require.NoError(t, err)
	return r
}

// start runs r until stop or the end of the test; stop returns once the
// runner has stored every outcome and run every hook.
func start(t *testing.T, r *jobs.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-errc)
		}
	}
	t.Cleanup(stop)
	return stop
}

// await waits for the job to end.
func await(t *testing.T, r *jobs.Runner, j *jobs.Job) *jobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	final, err := r.Await(ctx, j.ID)
	require.NoError(t, err)
	return final
}
