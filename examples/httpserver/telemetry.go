package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsotel"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// telemetryShutdownTimeout bounds the last export at shutdown.
const telemetryShutdownTimeout = 5 * time.Second

// telemetry exports traces and metrics over OTLP/HTTP: a span per request
// (traceRequests), and the jobs' spans and metrics (package jobsotel).
type telemetry struct {
	tel    *jobsotel.Telemetry
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

// startTelemetry sets up the exporters to cfg.OTLPEndpoint, or returns nil
// when it is empty. stats feeds the jobs.pending gauge.
func startTelemetry(ctx context.Context, cfg Config, stats func(context.Context) (*jobs.Stats, error)) (*telemetry, error) {
	if cfg.OTLPEndpoint == "" {
		return nil, nil
	}
	// As the exporters read OTEL_EXPORTER_OTLP_ENDPOINT: a base URL to
	// which each signal adds its path.
	base := strings.TrimSuffix(cfg.OTLPEndpoint, "/")
	spans, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(base+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	metrics, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(base+"/v1/metrics"))
	if err != nil {
		return nil, fmt.Errorf("OTLP metric exporter: %w", err)
	}
	// service.name httpserver unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName("httpserver")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	t := &telemetry{
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		tp:   sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithResource(res)),
		mp:   sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics)), sdkmetric.WithResource(res)),
	}
	t.tracer = t.tp.Tracer("github.com/jobsmith/jobs/examples/httpserver")
	t.tel, err = jobsotel.New(jobsotel.WithTracerProvider(t.tp), jobsotel.WithMeterProvider(t.mp),
		jobsotel.WithPropagator(t.prop), jobsotel.WithStats(stats))
	if err != nil {
		return nil, errors.Join(err, t.shutdown())
	}
	return t, nil
}

// shutdown exports what is left and stops the exporters.
func (t *telemetry) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), telemetryShutdownTimeout)
	defer cancel()
	var err error
	if t.tel != nil {
		err = t.tel.Close()
	}
	return errors.Join(err, t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}

// traceRequests wraps s with a server span per request, named after its
// route (such as "POST /api/transcribe"), a child of the caller's span when
// the request has a traceparent header. Jobs enqueued by the request get
// its span as their enqueue span's parent.
func (t *telemetry) traceRequests(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		name := r.Method
		if pattern != "" {
			name = pattern // the mux's patterns start with the method
		}
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		defer span.End()
		if _, route, ok := strings.Cut(pattern, " "); ok {
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		s.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	})
}

// statusWriter notes the status code of a response. Unwrap lets
// http.ResponseController and WebSocket upgrades reach the writer below.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
