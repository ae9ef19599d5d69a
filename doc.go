// Package jobs runs durable background jobs that report live progress, can
// be canceled while they run, survive a crash of the process that runs them,
// and hand back a result. Jobs are stored through a [JobRepository]: SQLite
// or PostgreSQL through bun, or memory for tests.
//
// # Jobs
//
// A [Job] has a kind (which handler runs it), a JSON payload, a queue, a
// priority and a lifecycle: pending → running → succeeded, failed or
// canceled. A [Runner] enqueues jobs and runs them:
//
//	repo, err := jobsqlite.Open(ctx, "data/jobs.db")
//	r, err := jobs.NewRunner(repo, jobs.WithConcurrency(8))
//	job, err := r.Enqueue(ctx, "transcribe", Audio{URL: url}, jobs.WithUniqueKey(key))
//
// # Handlers
//
// Register one handler per kind before calling [Runner.Run]. [Handle] is the
// typed form: the payload is decoded into T and the returned R becomes the
// job's result.
//
//	jobs.Handle(r, "transcribe", func(ctx context.Context, j *jobs.Job, in Audio, p jobs.Reporter) (Transcript, error) {
//		return transcribe(ctx, in, p)
//	})
//	go r.Run(ctx) // returns after a graceful drain when ctx ends
//
// A runner claims only the kinds it has handlers for, so different processes
// can serve different kinds.
//
// # Progress
//
// The [Reporter] passed to a handler takes a fraction in [0, 1] and a short
// message. Report does no I/O: watchers in the same process see every value,
// the repository gets at most one write per job per progress interval
// (250ms by default; [WithProgressInterval]) plus the final value, and each
// write renews the job's lease.
//
//	for i, seg := range in.Segments {
//		if err := ctx.Err(); err != nil {
//			return Transcript{}, err
//		}
//		// … work …
//		p.Report(float64(i+1)/float64(len(in.Segments)), fmt.Sprintf("segment %d/%d", i+1, len(in.Segments)))
//	}
//
// [Runner.Watch] streams snapshots of a job until it finishes, from any
// process sharing the database; [Runner.Await] and [AwaitResult] wait for
// the end.
//
//	for s, err := range r.Watch(ctx, job.ID) {
//		if err != nil {
//			return err
//		}
//		fmt.Printf("%s %.0f%% %s\n", s.Status, s.Progress*100, s.Message)
//	}
//
// # Long jobs: checkpoints and partial results
//
// A handler that saves a checkpoint resumes where it stopped after a crash,
// a deploy or a lost lease, and one that appends to its job's output
// streams partial results while it runs. [Reporter.Append] stages an item
// (one transcript segment, say); [Reporter.Checkpoint] stores the state
// together with the items staged since the previous checkpoint, in one
// write, and returns once it is stored. The next attempt of the job reads
// the checkpoint with [Job.LoadCheckpoint].
//
//	var next int // the first segment not yet done
//	if _, err := j.LoadCheckpoint(&next); err != nil {
//		return Transcript{}, err
//	}
//	for ; next < len(in.Segments); next++ {
//		seg := transcribe(ctx, in.Segments[next])
//		p.Append(seg)
//		if err := p.Checkpoint(ctx, next+1); err != nil {
//			return Transcript{}, err // ErrLeaseLost: another runner has the job
//		}
//	}
//
// The rule that makes resume and output agree: an item becomes part of the
// output only with the checkpoint that covers it (or with the job's outcome,
// for items appended after the last checkpoint). So when a process dies
// between two checkpoints, the work since the last one is done again by the
// next attempt, and the items of the dead attempt that no checkpoint covered
// were never stored: a reader sees each item exactly once, in order. What is
// not guaranteed: side effects of that redone work outside the job (a call
// to another service) happen twice, as with any retry; and items reach
// readers at checkpoint pace, not at Append pace.
//
// [Runner.Output] follows a job's output from a sequence number on, live
// until the job ends, from any process sharing the database; an item's Seq
// resumes a stream.
//
//	for item, err := range r.Output(ctx, job.ID, lastSeq) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(item.Seq, string(item.Data))
//	}
//
// # Flow control
//
// Limits bound how many jobs run and start across every process sharing
// the database, enforced by the claim itself, so concurrent runners never
// over-admit. A [Limit] belongs to a kind ([WithLimit]) or a queue
// ([WithQueueLimit]); every runner serving them must declare the same
// limits. Two GPUs for the whole cluster:
//
//	jobs.Handle(r, "transcribe", transcribe, jobs.WithLimit(jobs.Limit{Running: 2}))
//
// A concurrency key names who a job works for (a user, a tenant);
// PerKey bounds each key's running jobs:
//
//	jobs.Handle(r, "transcribe", transcribe, jobs.WithLimit(jobs.Limit{Running: 2, PerKey: 1}))
//	job, err := r.Enqueue(ctx, "transcribe", audio, jobs.WithConcurrencyKey(userID))
//
// Keys are served fairly: among jobs of equal priority, claims take the
// keys in turn (jobs without a key count as one key), so a user who
// submits a thousand files at once does not starve one who submits a
// single file. This needs no option.
//
// Rate and KeyRate bound starts per Period (default one second), for an
// upstream API's quota; a runner held back by a rate sleeps until the
// next start is allowed instead of polling:
//
//	r, err := jobs.NewRunner(repo, jobs.WithQueueLimit("upstream", jobs.Limit{Rate: 10}))
//
// A job's slot is held while it is running, also by a process that died,
// until its lease is rescued (its owner known dead, or its lease expired);
// a handler whose lease was lost has its context cancelled, so a live
// lease is what a limit counts. A runner that claims a limited kind or
// queue without declaring the limit is not held back by it, though its
// running jobs count against the others.
//
// On PostgreSQL a limited claim is one statement: a function that takes a
// lock per limited kind and queue, counts, walks the pending jobs and
// claims those that fit, so it holds no lock across a round trip to the
// client, and a process that is paused or cut off after sending it stalls
// no other process. On SQLite a limited claim is one write transaction.
// Limits that do not bind cost little; a Running limit that binds caps
// how many jobs a runner holds at once, so for jobs shorter than a few
// milliseconds the claim-and-store round trips, not the handlers, bound
// the throughput (see the README's figures).
//
// # Cancellation
//
// [Runner.Cancel] cancels a pending job at once. For a running job it stores
// a cancel request: the handler's context is cancelled at once when the job
// runs in this process, and within the refresh interval
// ([WithRefreshInterval]) in another. A canceled job is never retried.
// The rule is simple: when Cancel returns nil the job ends canceled,
// whatever its handler returns after the request, even a result it had
// already returned that was not yet stored (the result is dropped); when the
// job's outcome was stored first, Cancel returns [ErrConflict] and the job
// keeps it.
// Handlers learn why their context ended from [context.Cause]:
//
//	<-ctx.Done()
//	switch cause := context.Cause(ctx); {
//	case errors.Is(cause, jobs.ErrCanceled):  // Cancel was called
//	case errors.Is(cause, jobs.ErrTimeout):   // the attempt ran past its timeout
//	case errors.Is(cause, jobs.ErrClosed):    // the runner is closing; the job will run again
//	case errors.Is(cause, jobs.ErrLeaseLost): // another runner owns the job now
//	}
//
// # Pausing a queue
//
// [Runner.PauseQueue] stops the jobs of one queue from starting, in every
// process that shares the database, until [Runner.ResumeQueue]. The pause
// is stored, so it outlives restarts, and a queue may be paused before it
// has any job. Running jobs go on and finish; pending jobs, new ones and
// those that go back to pending (retries, rescues) wait; Cancel and List
// work as usual. In the pausing process the pause holds from the moment
// PauseQueue returns (a job claimed just before is handed back, not
// started); other processes stop at their next claim, within their poll
// interval. A resume starts the waiting jobs at once in the resuming
// process, and in others at once with a [Notifier] (jobspg.NewListener)
// or within their poll interval. [Runner.Stats] lists the paused queues:
//
//	if err := r.PauseQueue(ctx, "transcribe"); err != nil { // e.g. the GPU pool is being drained
//		return err
//	}
//	st, err := r.Stats(ctx) // st.Paused == ["transcribe"]; st.ByQueue["transcribe"] counts its jobs
//	// …
//	err = r.ResumeQueue(ctx, "transcribe")
//
// # Schedules
//
// [Runner.Schedule] enqueues a job on a timetable: a cron expression (five
// fields, or six with seconds first, or a descriptor such as @daily) read
// in the schedule's time zone, or "@every D". Every process that declares
// the same schedule name shares it, with no leader: each tick enqueues
// exactly one job, because the repository moves the schedule's stored last
// tick forward and creates the tick's job in one transaction
// ([JobRepository.Tick]); the job's RunAt is its tick. Schedules are code,
// deployed with it: a changed spec applies from its next tick, a removed
// schedule stops. Ticks missed while no process ran are skipped, or with
// CatchUp run once (one job for the latest). [Runner.Schedules] lists the
// stored schedules with their last and next ticks:
//
//	err := r.Schedule("nightly-cleanup", jobs.Schedule{
//		Spec:     "30 3 * * *", // 03:30 every day…
//		Location: berlin,       // …in Berlin
//		Kind:     "cleanup",
//		CatchUp:  true, // after a night without any process, run it once at start
//	})
//
// # Dependencies
//
// A job can run after other jobs: created with their IDs ([After]), or in
// one call with the jobs it follows ([EnqueueRequest].After names earlier
// requests, so a graph has no cycle), it is waiting until every one of
// them has ended, then pending. When one fails or is canceled it is
// canceled at once, its Error naming that job, and so are the jobs that
// wait for it in turn; with [WithRunAnyway] it runs whatever their
// outcomes. The repository decides this in the transaction of the write
// that ends each job, whichever process makes it, so a job never starts
// early and becomes pending once. A handler reads its dependencies'
// results through [Job].DependsOn:
//
//	js, err := r.EnqueueMany(ctx,
//		jobs.EnqueueRequest{Kind: "transcribe", Payload: part1},
//		jobs.EnqueueRequest{Kind: "transcribe", Payload: part2},
//		jobs.EnqueueRequest{Kind: "summarise", After: []int{0, 1}}, // waits for both
//	)
//	later, err := r.Enqueue(ctx, "notify", nil, jobs.After(js[2].ID))
//
// # Batches
//
// [Runner.EnqueueBatch] creates jobs and their batch in one call. The
// batch is a job that waits for them all: its progress is theirs
// together, so one bar follows the whole group; canceling it cancels
// those that have not ended; when the last one ends, whatever the
// outcomes, its callback runs once (the batch's own kind and handler,
// which reads every job's outcome through DependsOn). A batch of kind
// [BatchKind] (Kind "") has no callback and ends by itself, succeeded when
// every job did:
//
//	batch, parts, err := r.EnqueueBatch(ctx,
//		jobs.EnqueueRequest{Kind: "merge", Payload: file}, // the callback
//		chunks..., // one EnqueueRequest per chunk
//	)
//	for s, err := range r.Watch(ctx, batch.ID) { … } // one progress bar
//
// [Runner.Retry] of a failed or canceled batch retries its jobs that did
// not succeed, and the batch waits for them again before its callback
// runs: a file whose chunks failed is retried as one.
//
// # Operating: retry, cancel and delete many, metadata
//
// [Runner.Retry] runs a failed or canceled job again with a fresh attempt
// budget (its error history is kept, its output cleared);
// [Runner.CancelMany], [Runner.RetryMany] and [Runner.DeleteMany] act on
// every job that matches a [ListQuery] filter (statuses, kind, queue,
// created before), in batches of its Limit, each one short write, skipping
// the jobs whose status does not allow the operation. A sweep covers the
// jobs that existed when it began, each once, even a job that fails again
// while it runs. CancelMany stops running handlers as [Runner.Cancel] does.
//
//	n, err := r.RetryMany(ctx, jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}, Kind: "transcribe"})
//	n, err = r.DeleteMany(ctx, jobs.ListQuery{CreatedBefore: time.Now().Add(-24 * time.Hour)})
//
// [WithMetadata] stores a small map of strings with a job (trace context, a
// request ID); handlers read it from their *Job, hooks from theirs.
//
// [Hooks] observe the lifecycle for logging, metrics and tracing, and
// several [WithHooks] add up. Two of them take a ctx: OnEnqueue runs with
// the enqueuing caller's ctx before the job is stored and may add metadata
// (the caller's trace context, say); OnAttempt wraps each attempt, giving
// the handler its ctx and learning the stored outcome. Package jobsotel,
// a module of its own, builds OpenTelemetry spans and metrics on them.
//
// # Errors
//
// A handler error fails the attempt; the job is retried with exponential
// backoff and jitter until its MaxAttempts are used up, then it fails.
// [Permanent] fails it at once and [RetryAfter] chooses the delay. A panic
// is recovered, logged with its stack, and counts as a failed attempt.
//
//	if errors.Is(err, errBadAudio) {
//		return Transcript{}, jobs.Permanent(err)
//	}
//	if rateLimited {
//		return Transcript{}, jobs.RetryAfter(time.Minute, err)
//	}
//
// Every error of this package is an [*Error] with a stable [Code]; match the
// sentinels with [errors.Is] (errors.Is(err, jobs.ErrNotFound)). An error
// caused by the caller's context ending has [ErrUnavailable] and matches
// ctx.Err() with errors.Is as well. An enqueue
// that returns an error stored nothing, unless the error is
// [ErrOutcomeUnknown]: the database could not confirm the write, and only a
// retry with the same unique key is safe.
//
// # Shutdown
//
// When Run's context ends the runner stops claiming, waits up to the grace
// period ([WithShutdown]) for running handlers, then cancels them with
// [ErrClosed] (the runner is closing) and releases their jobs to pending
// without counting the attempt, so another runner takes them over at once. Outcomes are stored
// with a context detached from the shutdown, so none is lost.
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	if err := r.Run(ctx); err != nil {
//		log.Print(err)
//	}
//
// If a process dies instead, its leases stop being renewed and its jobs run
// again elsewhere within about 1.5 lease durations ([WithLeaseDuration]);
// through jobsbun, whose owner locks tell a dead process from a paused one,
// within about 0.1s (SQLite) or 0.2s (PostgreSQL) of its death.
// Delivery is at least once: a process killed after a handler's side effect
// but before its outcome is stored runs that job again, so handlers that
// touch the outside world should be idempotent.
//
// # Databases
//
// This package holds no SQL and imports no database driver. Storage is a
// [JobRepository]; the implementations in this module are
// [MemoryRepository] and, in package jobsbun, one for SQLite and
// PostgreSQL through bun, which creates or migrates its schema (the tables
// jobs, job_output, jobs_queues and jobs_schema_version) on open.
// Packages jobsqlite and jobspg open it for you, so a program compiles
// only the driver it uses:
//
//	repo, err := jobsqlite.Open(ctx, "data/jobs.db")             // embedded, pure Go, one host
//	repo, err := jobspg.Open(ctx, "postgres://user@db:5432/app") // many processes on many hosts
//	repo := jobs.NewMemoryRepository()                           // tests; nothing survives a restart
//
// To enqueue atomically with your own rows, open the database yourself
// (jobsqlite.OpenDB or jobspg.OpenDB), share it with jobsbun.New, and
// enqueue inside your transaction with [Runner.EnqueueTx]; jobsbun.RunInTx
// commits on success, rolls back on error or panic, and lets the runners
// of this process start the job as soon as it commits:
//
//	err := jobsbun.RunInTx(ctx, db, func(ctx context.Context, tx bun.Tx) error {
//		if _, err := tx.NewInsert().Model(&order).Exec(ctx); err != nil {
//			return err
//		}
//		_, err := r.EnqueueTx(ctx, tx, "invoice", order)
//		return err
//	})
//
// Every implementation of [JobRepository] must pass the conformance suite in
// package jobstest, which runs the same cases on memory, SQLite and
// PostgreSQL.
package jobs
