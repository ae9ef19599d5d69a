package jobsbun_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/uptrace/bun"
)

// An order and the job that sends its receipt are written in one
// transaction: both exist after the commit, neither after a rollback. The
// runner starts the job as soon as RunInTx has committed, without waiting
// for its next poll (an hour away here).
func ExampleRunInTx() {
	dir, err := os.MkdirTemp("", "jobsbun-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Order is a row of the application's own table, beside the jobs tables.
	type Order struct {
		bun.BaseModel `bun:"table:orders"`

		ID   int64  `bun:"id,pk,autoincrement"`
		Item string `bun:"item,notnull"`
	}

	ctx := context.Background()
	db, err := jobsqlite.OpenDB(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the repository does not close a database it was handed
	if _, err := db.NewCreateTable().Model((*Order)(nil)).Exec(ctx); err != nil {
		log.Fatal(err)
	}
	repo, err := jobsbun.New(ctx, db) // creates the jobs tables in the same file
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	r, err := jobs.NewRunner(repo, jobs.WithPollInterval(time.Hour)) // no waiting for a poll
	if err != nil {
		log.Fatal(err)
	}
	jobs.Handle(r, "send_receipt", func(ctx context.Context, j *jobs.Job, orderID int64, p jobs.Reporter) (string, error) {
		return fmt.Sprintf("receipt for order %d sent", orderID), nil
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(runCtx) }()

	placeOrder := func(item string) (*jobs.Job, error) {
		var job *jobs.Job
		err := jobsbun.RunInTx(ctx, db, func(ctx context.Context, tx bun.Tx) error {
			order := &Order{Item: item}
			if _, err := tx.NewInsert().Model(order).Exec(ctx); err != nil {
				return err
			}
			var err error
			job, err = r.EnqueueTx(ctx, tx, "send_receipt", order.ID)
			if err != nil {
				return err
			}
			if item == "" {
				return errors.New("no item") // rolls back the order and its job
			}
			return nil
		})
		return job, err
	}

	job, err := placeOrder("book")
	if err != nil {
		log.Fatal(err)
	}
	receipt, final, err := jobs.AwaitResult[string](ctx, r, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(final.Status+":", receipt)

	_, err = placeOrder("")
	fmt.Println("rolled back:", err)
	orders, err := db.NewSelect().Model((*Order)(nil)).Count(ctx)
	if err != nil {
		log.Fatal(err)
	}
	stats, err := repo.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("orders:", orders, "jobs:", stats.Total)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// succeeded: receipt for order 1 sent
	// rolled back: no item
	// orders: 1 jobs: 1
}

// New shares the application's database with the jobs. Options set the
// repository's limits; here payloads may have at most 16 bytes.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "jobsbun-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := jobsqlite.OpenDB(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	repo, err := jobsbun.New(ctx, db, jobsbun.WithMaxPayloadBytes(16))
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	small := &jobs.Job{Kind: "resize", Payload: []byte(`{"w":640}`)}
	if err := repo.Create(ctx, small); err != nil {
		log.Fatal(err)
	}
	fmt.Println(small.Kind, small.Status, small.Queue)

	large := &jobs.Job{Kind: "resize", Payload: []byte(`{"w":640,"h":480,"fit":"cover"}`)}
	err = repo.Create(ctx, large)
	fmt.Println("too large:", errors.Is(err, jobs.ErrTooLarge))
	// Output:
	// resize pending default
	// too large: true
}
