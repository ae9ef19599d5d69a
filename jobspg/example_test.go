package jobspg_test

import (
	"context"
	"encoding/json"
	"log"
	"os"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobspg"
)

// A worker process on PostgreSQL: Open connects and migrates the schema,
// and a Listener lets the runner react at once to jobs enqueued and cancels
// requested by other processes (polling remains the fallback). Run as many
// such processes, on as many hosts, as the work needs.
func ExampleOpen() {
	ctx := context.Background()
	repo, err := jobspg.Open(ctx, os.Getenv("DATABASE_URL"), jobspg.WithMaxOpenConns(16))
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	r, err := jobs.NewRunner(repo,
		jobs.WithConcurrency(8),
		jobs.WithNotifier(jobspg.NewListener(repo.DB())))
	if err != nil {
		log.Fatal(err)
	}
	r.Handle("transcribe", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		// … the work, reporting progress with p.Report(fraction, message)
		return json.RawMessage(`{"text":"…"}`), nil
	})
	if err := r.Run(ctx); err != nil { // until ctx ends; then a graceful shutdown
		log.Fatal(err)
	}
}
