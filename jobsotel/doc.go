// Package jobsotel traces and measures the jobs of github.com/jobsmith/jobs
// with OpenTelemetry. It is a module of its own, so that programs that do
// not use it do not link OpenTelemetry.
//
// [New] returns a [Telemetry]; pass its [Telemetry.Option] to every
// [jobs.NewRunner] of the process, producers and workers alike:
//
//	tel, err := jobsotel.New(jobsotel.WithStats(repo.Stats)) // the otel globals by default
//	if err != nil { … }
//	defer tel.Close()
//	r, err := jobs.NewRunner(repo, tel.Option())
//
// # Traces
//
// Each enqueue ([jobs.Runner.Enqueue], EnqueueTx, EnqueueMany; not the
// jobs that schedules create) gets a PRODUCER span named "enqueue KIND", a
// child of the caller's span, and
// the span's W3C trace context (traceparent, tracestate) is stored in the
// job's metadata ([jobs.Job].Metadata), so it travels with the job through
// the database to whatever process runs it. A metadata that already holds
// a traceparent is left as it is, and trace context that would not fit
// the metadata limits is not stored.
//
// Each attempt gets a CONSUMER span named "process KIND", the handler's
// ctx carries it (spans the handler starts are its children), and it ends
// when the attempt's outcome is stored. The attempt span is the root of a
// trace of its own, LINKED to the enqueue span, not its child: this is
// what the OpenTelemetry messaging conventions ask of "process" spans (they
// SHOULD link to the message's creation context), and it suits jobs,
// which may start hours after the request that created them and run
// several attempts: as children, they would stretch the request's trace
// over hours and mix every attempt into it. Tracing tools show the link
// both ways. Baggage in the job's trace context is handed to the handler.
//
// Span attributes follow the messaging semantic conventions (v1.43.0):
//
//	messaging.system             "jobs"
//	messaging.operation.name     "enqueue" or "process"
//	messaging.operation.type     "send" or "process"
//	messaging.destination.name   the job's queue
//	messaging.message.id         the job's ID (on the enqueue span once it is stored)
//	messaging.jobs.kind          the job's kind
//	messaging.jobs.attempt       the attempt's number (process spans)
//	messaging.jobs.outcome       how the attempt ended (process spans; see below)
//	messaging.jobs.duplicate     true when the enqueue found the job of its unique key (enqueue spans)
//	error.type                   on failures: the jobs error code of a failed enqueue, "_OTHER"
//	                             for a failed attempt, "lease_lost" for a lost one
//
// The outcome of an attempt is succeeded, failed, canceled, retrying (it
// failed and the job runs again), released (handed back at shutdown, not
// counted) or lost (its lease was lost or its outcome could not be
// stored). Failed, retrying and lost attempts set the span's status to
// Error with the job's error text.
//
// # Metrics
//
// The instruments, with the attributes messaging.destination.name (queue)
// and messaging.jobs.kind, plus messaging.jobs.outcome where it says so:
//
//	jobs.enqueued          counter, {job}: jobs stored by an enqueue (not duplicates)
//	jobs.started           counter, {attempt}: attempts whose handler was called
//	jobs.finished          counter, {attempt}: ended attempts, by outcome
//	jobs.attempt.duration  histogram, s: from the handler's call to the stored outcome, by outcome
//	jobs.queue.latency     histogram, s: from when a job could start (its RunAt, or its creation) to its attempt's start
//	jobs.running           up-down counter, {attempt}: attempts running in this process
//	jobs.pending           gauge, {job}: pending jobs per queue (queue attribute only), with [WithStats]
//
// Counts are of this process's runners: sum them over processes.
package jobsotel
