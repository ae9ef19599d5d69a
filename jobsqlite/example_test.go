package jobsqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsqlite"
)

// Open creates the database file and its schema on first use; a runner on
// the repository then runs the jobs, here one that doubles a number.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "jobs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	repo, err := jobsqlite.Open(ctx, filepath.Join(dir, "jobs.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	r, err := jobs.NewRunner(repo)
	if err != nil {
		log.Fatal(err)
	}
	jobs.Handle(r, "double", func(ctx context.Context, j *jobs.Job, n int, p jobs.Reporter) (int, error) {
		return 2 * n, nil
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(runCtx) }()

	job, err := r.Enqueue(ctx, "double", 21)
	if err != nil {
		log.Fatal(err)
	}
	final, err := r.Await(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	var got int
	if err := json.Unmarshal(final.Result, &got); err != nil {
		log.Fatal(err)
	}
	fmt.Println(final.Status, got)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// succeeded 42
}
