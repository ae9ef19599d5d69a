package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jobsmith/jobs"
)

// A batch of jobs with a callback: each job resizes one image, and the
// callback, which runs once they have all ended, whatever their outcome,
// reports them, reading each through its DependsOn. Watching the batch
// would show their progress together; canceling it would cancel those that
// have not ended.
func ExampleRunner_EnqueueBatch() {
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	// The callback is pending once the last job has ended, and the runner
	// that finished that job looks for it at once.
	r, err := jobs.NewRunner(repo, jobs.WithPollInterval(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	jobs.Handle(r, "resize", func(ctx context.Context, j *jobs.Job, name string, _ jobs.Reporter) (string, error) {
		if name == "broken.png" {
			return "", jobs.Permanent(errors.New("not an image"))
		}
		return "small-" + name, nil
	})
	jobs.Handle(r, "album", func(ctx context.Context, j *jobs.Job, title string, _ jobs.Reporter) (string, error) {
		done := 0
		for _, id := range j.DependsOn {
			img, err := r.Get(ctx, id)
			if err != nil {
				return "", err
			}
			if img.Status == jobs.StatusSucceeded {
				done++
			} else {
				fmt.Printf("skipped: %s (%s)\n", img.Payload, img.Error)
			}
		}
		return fmt.Sprintf("%s: %d of %d images", title, done, len(j.DependsOn)), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	batch, images, err := r.EnqueueBatch(ctx,
		jobs.EnqueueRequest{Kind: "album", Payload: "Holidays"}, // the callback
		jobs.EnqueueRequest{Kind: "resize", Payload: "beach.png"},
		jobs.EnqueueRequest{Kind: "resize", Payload: "broken.png"},
		jobs.EnqueueRequest{Kind: "resize", Payload: "hills.png"},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("batch:", batch.Status, "for", len(images), "images")
	album, _, err := jobs.AwaitResult[string](ctx, r, batch.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(album)
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// batch: waiting for 3 images
	// skipped: "broken.png" (not an image)
	// Holidays: 2 of 3 images
}
