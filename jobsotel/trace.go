package jobsotel

import (
	"context"
	"time"

	"github.com/jobsmith/jobs"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The attributes of this package beyond the messaging conventions, in the
// messaging.{system} namespace the conventions reserve for them.
const (
	kindKey      = attribute.Key("messaging.jobs.kind")
	attemptKey   = attribute.Key("messaging.jobs.attempt")
	outcomeKey   = attribute.Key("messaging.jobs.outcome")
	duplicateKey = attribute.Key("messaging.jobs.duplicate")
)

var systemAttr = semconv.MessagingSystemKey.String("jobs")

// The metadata limits of jobs.WithMetadata: trace context that would
// break them is not stored, so that tracing never fails an enqueue.
const (
	maxMetadataKeys  = 32
	maxMetadataKey   = 128
	maxMetadataValue = 1024
)

// onEnqueue is the OnEnqueue hook: a producer span around the write, whose
// context it stores in the job's metadata.
func (t *Telemetry) onEnqueue(ctx context.Context, j *jobs.Job) func(error) {
	ctx, span := t.tracer.Start(ctx, "enqueue "+j.Kind, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(systemAttr, semconv.MessagingOperationName("enqueue"),
			semconv.MessagingOperationTypeSend, kindKey.String(j.Kind)))
	t.inject(ctx, j)
	return func(err error) {
		defer span.End()
		span.SetAttributes(semconv.MessagingDestinationName(j.Queue))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
			return
		}
		span.SetAttributes(semconv.MessagingMessageID(j.ID.String()))
		if j.Duplicate {
			span.SetAttributes(duplicateKey.Bool(true))
			return
		}
		t.inst.enqueued.Add(ctx, 1, metric.WithAttributeSet(jobAttrs(j)))
	}
}

// errorType returns the error.type of a failed enqueue: the jobs error
// code, or "_OTHER".
func errorType(err error) string {
	if c := jobs.CodeOf(err); c != "" {
		return string(c)
	}
	return "_OTHER"
}

// inject stores the trace context of ctx in j's metadata, unless the
// metadata already has one or has no room for it.
func (t *Telemetry) inject(ctx context.Context, j *jobs.Job) {
	if _, ok := j.Metadata["traceparent"]; ok {
		return
	}
	carrier := propagation.MapCarrier{}
	t.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return
	}
	n := len(j.Metadata)
	for k, v := range carrier {
		if _, ok := j.Metadata[k]; !ok {
			n++
		}
		if len(k) > maxMetadataKey || len(v) > maxMetadataValue {
			return
		}
	}
	if n > maxMetadataKeys {
		return
	}
	if j.Metadata == nil {
		j.Metadata = make(map[string]string, len(carrier))
	}
	for k, v := range carrier {
		j.Metadata[k] = v
	}
}

// onAttempt is the OnAttempt hook: a consumer span over the attempt,
// linked to the enqueue span found in the job's metadata.
func (t *Telemetry) onAttempt(ctx context.Context, j *jobs.Job) (context.Context, func(*jobs.Job, string)) {
	start := time.Now()
	attrs := jobAttrs(j)
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithNewRoot(),
		trace.WithTimestamp(start),
		trace.WithAttributes(systemAttr, semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess, semconv.MessagingDestinationName(j.Queue),
			semconv.MessagingMessageID(j.ID.String()), kindKey.String(j.Kind), attemptKey.Int(j.Attempt)),
	}
	if len(j.Metadata) > 0 {
		created := t.prop.Extract(context.Background(), propagation.MapCarrier(j.Metadata))
		if sc := trace.SpanContextFromContext(created); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		if b := baggage.FromContext(created); b.Len() > 0 {
			ctx = baggage.ContextWithBaggage(ctx, b)
		}
	}
	ctx, span := t.tracer.Start(ctx, "process "+j.Kind, opts...)

	set := metric.WithAttributeSet(attrs)
	t.inst.started.Add(ctx, 1, set)
	t.inst.running.Add(ctx, 1, set)
	ready := j.CreatedAt
	if j.RunAt.After(ready) {
		ready = j.RunAt
	}
	if !ready.IsZero() {
		t.inst.latency.Record(ctx, max(start.Sub(ready), 0).Seconds(), set)
	}
	return ctx, func(end *jobs.Job, outcome string) {
		// ctx's cancellation is over by now; its values are what matter.
		ctx := context.WithoutCancel(ctx)
		span.SetAttributes(outcomeKey.String(outcome))
		switch outcome {
		case "failed", "retrying":
			span.SetStatus(codes.Error, end.Error)
			span.SetAttributes(semconv.ErrorTypeKey.String("_OTHER"))
		case "lost":
			span.SetStatus(codes.Error, "lease lost or outcome not stored")
			span.SetAttributes(semconv.ErrorTypeKey.String("lease_lost"))
		}
		span.End()
		t.inst.running.Add(ctx, -1, set)
		byOutcome := metric.WithAttributeSet(attribute.NewSet(append(attrs.ToSlice(), outcomeKey.String(outcome))...))
		t.inst.finished.Add(ctx, 1, byOutcome)
		t.inst.duration.Record(ctx, time.Since(start).Seconds(), byOutcome)
	}
}

// jobAttrs returns the attributes of j's metrics: its queue and kind.
func jobAttrs(j *jobs.Job) attribute.Set {
	return attribute.NewSet(semconv.MessagingDestinationName(j.Queue), kindKey.String(j.Kind))
}
