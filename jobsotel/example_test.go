package jobsotel_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsotel"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A runner with tracing and metrics. A program would pass the providers it
// exports with (OTLP, say), or leave the options out to use the otel
// globals; here spans are recorded in memory, and the span of the attempt
// is linked to the span of the enqueue.
func Example() {
	ctx := context.Background()
	repo := jobs.NewMemoryRepository() // or jobsqlite.Open, jobspg.Open
	defer repo.Close()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider()

	tel, err := jobsotel.New(
		jobsotel.WithTracerProvider(tp), // default: otel.GetTracerProvider()
		jobsotel.WithMeterProvider(mp),  // default: otel.GetMeterProvider()
		jobsotel.WithStats(repo.Stats),  // the jobs.pending gauge
	)
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Close()
	r, err := jobs.NewRunner(repo, tel.Option()) // every runner of the process, producers too
	if err != nil {
		log.Fatal(err)
	}

	jobs.Handle(r, "greet", func(ctx context.Context, j *jobs.Job, name string, p jobs.Reporter) (string, error) {
		return "hello, " + name, nil // spans started from ctx are children of the attempt's
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	job, err := r.Enqueue(ctx, "greet", "ann") // ctx's span, if any, is the enqueue span's parent
	if err != nil {
		log.Fatal(err)
	}
	greeting, _, err := jobs.AwaitResult[string](ctx, r, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-done; err != nil { // after Run returns, every span has ended
		log.Fatal(err)
	}
	fmt.Println(greeting)
	ended := spans.Ended()
	for _, s := range ended {
		fmt.Println(s.Name(), s.SpanKind())
	}
	fmt.Println("linked:", ended[1].Links()[0].SpanContext.SpanID() == ended[0].SpanContext().SpanID())
	// Output:
	// hello, ann
	// enqueue greet producer
	// process greet consumer
	// linked: true
}
