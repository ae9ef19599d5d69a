package jobsotel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Two runners on one SQLite file, each with its own tracer provider as if
// in two processes: the attempt span in the worker is linked to the
// enqueue span in the producer through the trace context stored in the
// job's metadata, and the handler's spans are the attempt span's children.
func TestAttemptSpanLinksToTheEnqueueSpanAcrossRunners(t *testing.T) {
	t.Parallel()
	path := tempDB(t)
	producer, worker := newProcess(t), newProcess(t)
	pr := newRunner(t, openSQLite(t, path), producer.tel.Option())
	wr := newRunner(t, openSQLite(t, path), worker.tel.Option())
	var handlerCtx trace.SpanContext
	var member string
	wr.Handle("transcribe", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer("test").Start(ctx, "inside handler")
		handlerCtx = span.SpanContext()
		member = baggage.FromContext(ctx).Member("user").Value()
		span.End()
		return json.RawMessage(`"text"`), nil
	})
	stop := start(t, wr)

	// The producer's caller is serving a request, with a span and baggage.
	reqCtx, request := newTracer(producer).Start(t.Context(), "POST /api/transcribe")
	user, err := baggage.NewMember("user", "ann")
	require.NoError(t, err)
	b, err := baggage.New(user)
	require.NoError(t, err)
	reqCtx = baggage.ContextWithBaggage(reqCtx, b)
	j, err := pr.Enqueue(reqCtx, "transcribe", nil, jobs.InQueue("audio"))
	require.NoError(t, err)
	request.End()
	require.Contains(t, j.Metadata, "traceparent", "the trace context is stored with the job")
	require.Equal(t, jobs.StatusSucceeded, await(t, pr, j).Status)
	stop() // every hook has run

	enqueue := producer.span(t, "enqueue transcribe")
	require.Equal(t, trace.SpanKindProducer, enqueue.SpanKind())
	require.Equal(t, request.SpanContext().SpanID(), enqueue.Parent().SpanID(), "the enqueue span is the request's child")
	require.Equal(t, j.ID.String(), attr(enqueue, "messaging.message.id").AsString())
	require.Equal(t, "audio", attr(enqueue, "messaging.destination.name").AsString())
	require.Equal(t, "send", attr(enqueue, "messaging.operation.type").AsString())

	process := worker.span(t, "process transcribe")
	require.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	require.False(t, process.Parent().IsValid(), "the attempt span starts a trace of its own")
	require.Len(t, process.Links(), 1)
	require.Equal(t, enqueue.SpanContext().TraceID(), process.Links()[0].SpanContext.TraceID(), "linked to the enqueue span")
	require.Equal(t, enqueue.SpanContext().SpanID(), process.Links()[0].SpanContext.SpanID())
	require.Equal(t, j.ID.String(), attr(process, "messaging.message.id").AsString())
	require.Equal(t, "transcribe", attr(process, "messaging.jobs.kind").AsString())
	require.Equal(t, "audio", attr(process, "messaging.destination.name").AsString())
	require.EqualValues(t, 1, attr(process, "messaging.jobs.attempt").AsInt64())
	require.Equal(t, "succeeded", attr(process, "messaging.jobs.outcome").AsString())
	require.Equal(t, codes.Unset, process.Status().Code)

	inside := worker.span(t, "inside handler")
	require.Equal(t, handlerCtx, inside.SpanContext())
	require.Equal(t, process.SpanContext().SpanID(), inside.Parent().SpanID(), "the handler's spans are the attempt's children")
	require.Equal(t, "ann", member, "the caller's baggage reaches the handler")
	require.Empty(t, producer.spansNamed("process transcribe"))
	require.Empty(t, worker.spansNamed("enqueue transcribe"))
}

func newTracer(p *process) trace.Tracer {
	return p.tp.Tracer("test")
}

// Each attempt's span tells its outcome: retrying then failed, canceled,
// and Error status for failures.
func TestAttemptSpansTellTheOutcome(t *testing.T) {
	t.Parallel()
	p := newProcess(t)
	r := newRunner(t, jobs.NewMemoryRepository(), p.tel.Option())
	r.Handle("bad", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		return nil, fmt.Errorf("attempt %d broke", j.Attempt)
	})
	running := make(chan struct{})
	r.Handle("wait", func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		close(running)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	stop := start(t, r)
	bad, err := r.Enqueue(t.Context(), "bad", nil, jobs.WithMaxAttempts(2))
	require.NoError(t, err)
	require.Equal(t, jobs.StatusFailed, await(t, r, bad).Status)
	wait, err := r.Enqueue(t.Context(), "wait", nil)
	require.NoError(t, err)
	<-running
	_, err = r.Cancel(t.Context(), wait.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, await(t, r, wait).Status)
	stop()

	attempts := p.spansNamed("process bad")
	require.Len(t, attempts, 2)
	for i, want := range []string{"retrying", "failed"} {
		s := attempts[i]
		require.EqualValues(t, i+1, attr(s, "messaging.jobs.attempt").AsInt64())
		require.Equal(t, want, attr(s, "messaging.jobs.outcome").AsString())
		require.Equal(t, codes.Error, s.Status().Code)
		require.Equal(t, fmt.Sprintf("attempt %d broke", i+1), s.Status().Description)
		require.Equal(t, "_OTHER", attr(s, "error.type").AsString())
		require.Len(t, s.Links(), 1, "every attempt links to the enqueue")
		require.Equal(t, p.span(t, "enqueue bad").SpanContext().SpanID(), s.Links()[0].SpanContext.SpanID())
	}
	canceled := p.span(t, "process wait")
	require.Equal(t, "canceled", attr(canceled, "messaging.jobs.outcome").AsString())
	require.Equal(t, codes.Unset, canceled.Status().Code)
}

// A refused enqueue ends its span with an error; a duplicate is marked;
// neither is counted as enqueued.
func TestEnqueueSpanOfRefusedAndDuplicateJobs(t *testing.T) {
	t.Parallel()
	p := newProcess(t)
	r := newRunner(t, jobs.NewMemoryRepository(), p.tel.Option())
	_, err := r.Enqueue(t.Context(), "k", nil, jobs.InQueue("bad\x00queue"))
	require.ErrorIs(t, err, jobs.ErrInvalidArgument)
	refused := p.span(t, "enqueue k")
	require.Equal(t, codes.Error, refused.Status().Code)
	require.Equal(t, "invalid_argument", attr(refused, "error.type").AsString())

	for range 2 {
		_, err := r.Enqueue(t.Context(), "u", nil, jobs.WithUniqueKey("once"))
		require.NoError(t, err)
	}
	spans := p.spansNamed("enqueue u")
	require.Len(t, spans, 2)
	require.False(t, attr(spans[0], "messaging.jobs.duplicate").AsBool())
	require.True(t, attr(spans[1], "messaging.jobs.duplicate").AsBool())
	require.Equal(t, map[string]int64{"u": 1}, sums(t, p.metrics(t)["jobs.enqueued"], "messaging.jobs.kind"))
}

// Trace context is never forced into metadata: one the caller set is
// kept, and none is added where it would break the metadata limits.
func TestTraceContextRespectsTheCallersMetadata(t *testing.T) {
	t.Parallel()
	p := newProcess(t)
	r := newRunner(t, jobs.NewMemoryRepository(), p.tel.Option())
	ctx, span := newTracer(p).Start(t.Context(), "caller")
	defer span.End()

	own := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	j, err := r.Enqueue(ctx, "k", nil, jobs.WithMetadata(map[string]string{"traceparent": own}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"traceparent": own}, j.Metadata)

	full := map[string]string{}
	for i := range 32 {
		full[fmt.Sprint("key", i)] = "v"
	}
	j, err = r.Enqueue(ctx, "k", nil, jobs.WithMetadata(full))
	require.NoError(t, err, "a full metadata does not make tracing fail the enqueue")
	require.Equal(t, full, j.Metadata)

	j, err = r.Enqueue(ctx, "k", nil)
	require.NoError(t, err)
	require.Contains(t, j.Metadata, "traceparent")
}

// EnqueueTx gets its enqueue span and stores the trace context with the
// job in the caller's transaction.
func TestEnqueueTxStoresTheTraceContext(t *testing.T) {
	t.Parallel()
	p := newProcess(t)
	repo, err := jobsqlite.Open(t.Context(), tempDB(t))
	require.NoError(t, err)
	defer repo.Close()
	r := newRunner(t, repo, p.tel.Option())
	var j *jobs.Job
	require.NoError(t, jobsbun.RunInTx(t.Context(), repo.DB(), func(ctx context.Context, tx bun.Tx) error {
		j, err = r.EnqueueTx(ctx, tx, "k", nil)
		return err
	}))
	stored, err := r.Get(t.Context(), j.ID)
	require.NoError(t, err)
	enqueue := p.span(t, "enqueue k")
	require.Equal(t, fmt.Sprintf("00-%s-%s-01", enqueue.SpanContext().TraceID(), enqueue.SpanContext().SpanID()),
		stored.Metadata["traceparent"])
}
