// Command httpserver is the transcription service of the jobs library: a
// REST API to create, list and cancel jobs and to pause and resume queues,
// live progress over Server-Sent Events and WebSocket, and a dashboard at /.
//
// Run it from the repository root:
//
//	go run ./examples/httpserver
//
// then open http://127.0.0.1:8080/, or:
//
//	curl -s -XPOST localhost:8080/api/transcribe -H 'Content-Type: application/json' -d '{"audio_url":"tone:20s","language":"en","user":"ada"}'
//	curl -N localhost:8080/api/jobs/ID/events
//	curl -s -XPOST localhost:8080/api/queues/default/pause   # no job of the queue starts, in any server process
//	curl -s localhost:8080/api/queues                        # counts by status per queue, and which are paused
//	curl -s localhost:8080/api/schedules                     # the nightly schedule's last and next run
//
// A transcription may name its "user": each user has at most
// APP_USER_CONCURRENCY (default 1) transcriptions running at once, and all
// transcriptions together at most APP_TRANSCRIBE_SLOTS (default no limit),
// counted across every server process on the database; users take turns,
// so one who submits a thousand files does not hold back one who submits
// a single file. Transcriptions without a user are bounded only by
// APP_TRANSCRIBE_SLOTS (and each process's APP_CONCURRENCY), not by
// APP_USER_CONCURRENCY, and take their turns as one more user. Every
// process on one database must use the same two values.
//
// A recording longer than APP_CHUNK_SECONDS (default 60) is cut into
// chunks, one transcription job each, run in parallel as the limits allow
// (each chunk counts as one of its user's transcriptions), and joined by a
// merge job, their batch: POST /api/transcribe returns the merge, whose
// progress is the chunks' together and whose result is the whole file's
// (see chunk.go).
//
// Configuration comes from the environment: APP_DATABASE_URL (default the
// SQLite file data/jobs.db; a postgres:// URL selects PostgreSQL), APP_ADDR
// (default 127.0.0.1:8080), APP_CONCURRENCY, APP_AUTH_TOKEN, APP_AUDIO_DIR,
// APP_SEGMENT_DELAY, APP_CHECKPOINT_INTERVAL, APP_CHUNK_SECONDS,
// APP_GRACE_PERIOD, APP_LEASE_DURATION, APP_USER_CONCURRENCY, APP_TRANSCRIBE_SLOTS,
// APP_ALLOWED_ORIGINS and APP_INSECURE_NO_AUTH; see [Config]. With
// OTEL_EXPORTER_OTLP_ENDPOINT set, it exports a span per request, per
// enqueue and per job attempt, and the jobs metrics, over OTLP/HTTP (see
// telemetry.go). Invalid configuration exits with status 2. SIGINT or SIGTERM
// stops accepting requests, drains the runner and exits 0.
//
// -h prints every route, the Idempotency-Key header and every variable
// (usage.txt, which the repository's README repeats) and exits 0.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/uptrace/bun/dialect"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

// Server timeouts.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second // streams extend it per event
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 10 * time.Second
)

// usage is what -h prints: the routes, the headers and the environment.
//
//go:embed usage.txt
var usage string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program: it serves until ctx is done, then shuts down
// and returns the exit code. It prints the listening URL (or, for -h, the
// usage) to stdout and logs to stderr. The program takes no other
// arguments.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("httpserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage below is the whole help
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "httpserver: %v (it takes no arguments; -h for help)\n", err)
		return exitConfig
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "httpserver: unexpected argument %q (configuration comes from APP_* variables; -h for help)\n", clip(fs.Arg(0), 64))
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := loadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "httpserver: invalid configuration:\n%v\n", indent(err.Error()))
		return exitConfig
	}
	repo, err := openRepository(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintf(stderr, "httpserver: cannot open the database: %v\n", err)
		return exitFailed
	}
	defer repo.Close()
	// APP_GRACE_PERIOD=0s means cancel at once; to WithShutdown, zero would
	// mean its default.
	opts := []jobs.Option{jobs.WithConcurrency(cfg.Concurrency), jobs.WithLeaseDuration(cfg.LeaseDuration),
		jobs.WithShutdown(max(cfg.GracePeriod, time.Nanosecond), 0), jobs.WithLogger(log)}
	if repo.DB().Dialect().Name() == dialect.PG {
		// Several servers on one database: new jobs, cancels and progress
		// from the others arrive by LISTEN/NOTIFY instead of the next poll.
		opts = append(opts, jobs.WithNotifier(jobspg.NewListener(repo.DB(), jobspg.WithListenerLogger(log))))
	}
	tel, err := startTelemetry(ctx, cfg, repo.Stats)
	if err != nil {
		fmt.Fprintf(stderr, "httpserver: %v\n", err)
		return exitFailed
	}
	if tel != nil {
		// Runs before repo.Close: the last export still reads the stats.
		defer func() {
			if err := tel.shutdown(); err != nil {
				log.Warn("telemetry shutdown", "err", err)
			}
		}()
		opts = append(opts, tel.tel.Option())
	}
	runner, err := jobs.NewRunner(repo, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "httpserver: %v\n", err)
		return exitFailed
	}
	// APP_CHECKPOINT_INTERVAL=0s means after every segment; to Options,
	// zero would mean its default.
	transcribe.Register(runner, cfg.AudioDir, transcribe.Options{Delay: cfg.SegmentDelay,
		CheckpointInterval: max(cfg.CheckpointInterval, time.Nanosecond)}, jobs.WithLimit(cfg.transcribeLimit()))
	if err := registerNightly(runner); err != nil {
		fmt.Fprintf(stderr, "httpserver: %v\n", err)
		return exitFailed
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "httpserver: %v\n", err)
		return exitFailed
	}
	shutdown, beginShutdown := context.WithCancel(context.WithoutCancel(ctx))
	defer beginShutdown()
	api := newServer(shutdown, cfg, runner, log)
	var handler http.Handler = api
	if tel != nil {
		handler = tel.traceRequests(api)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunner()
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "database", describeDatabase(cfg.DatabaseURL),
		"concurrency", cfg.Concurrency, "user_concurrency", cfg.UserConcurrency,
		"transcribe_slots", cfg.TranscribeSlots, "chunk_seconds", cfg.ChunkSeconds, "auth", cfg.AuthToken != "", "otlp", cfg.OTLPEndpoint)
	fmt.Fprintf(stdout, "listening on http://%s/\n", ln.Addr())

	code := exitOK
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		log.Error("server stopped", "err", err)
		code = exitFailed
	case err := <-runDone:
		log.Error("runner stopped", "err", err)
		runDone <- nil // already reported
		code = exitFailed
	}
	// Stop accepting and end the streams, finish in-flight requests, then
	// drain the runner: running jobs get its grace period, and whatever is
	// still running after it goes back to pending for the next start.
	log.Info("shutting down")
	beginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
		srv.Close()
	}
	stopRunner()
	if err := <-runDone; err != nil {
		log.Error("runner drain", "err", err)
		code = exitFailed
	}
	log.Info("stopped")
	return code
}

// openRepository opens SQLite or PostgreSQL according to the URL.
func openRepository(ctx context.Context, dbURL string) (*jobsbun.Repository, error) {
	db, err := parseDatabaseURL(dbURL)
	if err != nil {
		return nil, err
	}
	if db.postgres {
		return jobspg.Open(ctx, db.target)
	}
	return jobsqlite.Open(ctx, db.target)
}

// describeDatabase names the database for the log without credentials.
func describeDatabase(dbURL string) string {
	db, err := parseDatabaseURL(dbURL)
	switch {
	case err != nil:
		return "invalid"
	case db.postgres:
		return "postgres"
	}
	return "sqlite:" + db.target
}

// indent prefixes each line of s with two spaces.
func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
