package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsqlite"
)

// A first program, the README's: a handler that reports progress, a runner,
// a job enqueued, watched until it ends, and its result. Watch skips to the
// latest state when the job moves faster than the printing, so the lines
// before the last vary from run to run.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "jobs-first-program")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	repo, err := jobsqlite.Open(ctx, filepath.Join(dir, "jobs.db")) // your own file, such as data/jobs.db
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	r, err := jobs.NewRunner(repo)
	if err != nil {
		log.Fatal(err)
	}
	// A handler for the kind "count_words": typed input, progress, typed result.
	jobs.Handle(r, "count_words", func(ctx context.Context, j *jobs.Job, lines []string, p jobs.Reporter) (int, error) {
		words := 0
		for i, line := range lines {
			if err := ctx.Err(); err != nil { // canceled, timed out or shutting down
				return 0, err
			}
			words += len(strings.Fields(line))
			if err := p.Report(float64(i+1)/float64(len(lines)), fmt.Sprintf("line %d/%d", i+1, len(lines))); err != nil {
				return 0, err
			}
		}
		return words, nil
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }() // runs jobs until stop, then drains

	job, err := r.Enqueue(ctx, "count_words", []string{"the quick brown fox", "jumps over", "the lazy dog"})
	if err != nil {
		log.Fatal(err)
	}
	for s, err := range r.Watch(ctx, job.ID) { // the job's state after each change, until it ends
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %.0f%% %s\n", s.Status, s.Progress*100, s.Message)
	}
	words, _, err := jobs.AwaitResult[int](ctx, r, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("words:", words)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}

// A job's life through the repository alone: create it, claim it as a
// worker, report progress and finish it with a result. A Runner does the
// worker's part for you; this is what it does underneath.
func ExampleMemoryRepository() {
	ctx := context.Background()
	repo := jobs.NewMemoryRepository()
	defer repo.Close()

	job := &jobs.Job{Kind: "transcribe", Payload: json.RawMessage(`{"file":"talk.mp3"}`)}
	if err := repo.Create(ctx, job); err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", job.Status, job.Queue)

	claimed, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "worker-1", Limit: 10, LeaseDuration: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	work := claimed[0]
	fmt.Println("claimed:", work.Status, "attempt", work.Attempt)

	err = repo.UpdateProgress(ctx, time.Minute, jobs.ProgressUpdate{
		Lease:    work.Lease(),
		Progress: jobs.Progress{Fraction: 0.5, Message: "segment 1/2"},
	})
	if err != nil {
		log.Fatal(err)
	}
	err = repo.Finish(ctx, jobs.Completion{
		Lease:  work.Lease(),
		Status: jobs.StatusSucceeded,
		Result: json.RawMessage(`{"text":"hello"}`),
	})
	if err != nil {
		log.Fatal(err)
	}

	done, err := repo.Get(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("finished:", done.Status, "attempt", done.Attempt, "result", string(done.Result))
	fmt.Printf("progress: %.0f%% %q\n", done.Progress.Fraction*100, done.Progress.Message)

	// The lease ended with the attempt: a late write from the worker is fenced out.
	err = repo.Heartbeat(ctx, time.Minute, work.Lease())
	fmt.Println("late heartbeat lease lost:", errors.Is(err, jobs.ErrLeaseLost))
	// Output:
	// created: pending default
	// claimed: running attempt 1
	// finished: succeeded attempt 1 result {"text":"hello"}
	// progress: 100% "segment 1/2"
	// late heartbeat lease lost: true
}

// A handler that reports progress and is canceled half-way: its context ends
// with cause ErrCanceled, and the job ends canceled with its last progress.
func ExampleRunner_progressAndCancel() {
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	r, err := jobs.NewRunner(repo)
	if err != nil {
		log.Fatal(err)
	}
	halfway := make(chan struct{})
	jobs.Handle(r, "count", func(ctx context.Context, j *jobs.Job, n int, p jobs.Reporter) (int, error) {
		for i := 1; i <= n; i++ {
			if err := p.Report(float64(i)/float64(n), fmt.Sprintf("step %d/%d", i, n)); err != nil {
				return 0, err
			}
			if i == n/2 {
				close(halfway)
				<-ctx.Done() // a real handler would check ctx between steps
				fmt.Println("handler stopped:", context.Cause(ctx))
				return i, ctx.Err()
			}
		}
		return n, nil
	})

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	job, err := r.Enqueue(ctx, "count", 10)
	if err != nil {
		log.Fatal(err)
	}
	<-halfway
	if _, err := r.Cancel(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	final, err := r.Await(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s at %.0f%% (%s), attempt %d\n", final.Status, final.Progress.Fraction*100, final.Progress.Message, final.Attempt)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// handler stopped: jobs: canceled
	// canceled at 50% (step 5/10), attempt 1
}

// Watch streams a job's state as it changes. Here the handler takes one
// step each time the watcher has seen the previous one, so the output shows
// every value; a watcher that falls behind skips to the latest value.
func ExampleRunner_Watch() {
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	r, err := jobs.NewRunner(repo)
	if err != nil {
		log.Fatal(err)
	}
	next := make(chan struct{})
	r.Handle("encode", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		for i := 1; i <= 3; i++ {
			<-next
			if err := p.Report(float64(i)/4, fmt.Sprintf("pass %d", i)); err != nil {
				return nil, err
			}
		}
		<-next
		return json.RawMessage(`{"bytes":42}`), nil
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	job, err := r.Enqueue(ctx, "encode", nil)
	if err != nil {
		log.Fatal(err)
	}
	for s, err := range r.Watch(ctx, job.ID) {
		if err != nil {
			log.Fatal(err)
		}
		if s.Status == jobs.StatusPending {
			continue // not claimed yet
		}
		line := fmt.Sprintf("%-9s %3.0f%%", s.Status, s.Progress*100)
		if s.Message != "" {
			line += " " + s.Message
		}
		fmt.Println(line)
		if s.Status == jobs.StatusRunning {
			next <- struct{}{}
		}
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// running     0%
	// running    25% pass 1
	// running    50% pass 2
	// running    75% pass 3
	// succeeded 100% pass 3
}

// A long job that resumes where it stopped and streams its partial results.
// The handler checkpoints after each segment, together with the segment it
// appended; when the first attempt fails half-way, the retry starts at the
// first segment after the checkpoint, and the output holds each segment
// once.
func ExampleReporter_resume() {
	ctx := context.Background()
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	r, err := jobs.NewRunner(repo, jobs.WithRetryBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	segments := []string{"so", "it", "begins", "again"}
	jobs.Handle(r, "transcribe", func(ctx context.Context, j *jobs.Job, _ struct{}, p jobs.Reporter) (int, error) {
		next := 0 // the first segment not yet done
		if _, err := j.LoadCheckpoint(&next); err != nil {
			return 0, err
		}
		fmt.Printf("attempt %d starts at segment %d\n", j.Attempt, next)
		for ; next < len(segments); next++ {
			if j.Attempt == 1 && next == 2 {
				return 0, errors.New("worker lost") // a crash would do the same
			}
			if err := p.Append(segments[next]); err != nil {
				return 0, err
			}
			if err := p.Checkpoint(ctx, next+1); err != nil {
				return 0, err
			}
		}
		return len(segments), nil
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(runCtx) }()

	job, err := r.Enqueue(ctx, "transcribe", struct{}{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := r.Await(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	// Output follows a running job live; here the job has ended, so it
	// yields what is stored and stops.
	for item, err := range r.Output(ctx, job.ID, 0) {
		if err != nil {
			log.Fatal(err)
		}
		var text string
		_ = json.Unmarshal(item.Data, &text)
		fmt.Println(item.Seq, text)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// attempt 1 starts at segment 0
	// attempt 2 starts at segment 2
	// 1 so
	// 2 it
	// 3 begins
	// 4 again
}

// A schedule that ticks every second: each tick enqueues one job, whose
// RunAt is the tick, however many processes declare the same schedule.
func ExampleRunner_Schedule() {
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	r, err := jobs.NewRunner(repo)
	if err != nil {
		log.Fatal(err)
	}
	ticks := make(chan time.Time, 1)
	r.Handle("heartbeat", func(ctx context.Context, job *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		select {
		case ticks <- job.RunAt:
		default:
		}
		return nil, nil
	})
	if err := r.Schedule("heartbeat", jobs.Schedule{Spec: "@every 1s", Kind: "heartbeat"}); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	tick := <-ticks
	fmt.Println("ran the tick of a whole second:", tick.Equal(tick.Truncate(time.Second)))
	list, err := r.Schedules(ctx)
	if err != nil {
		log.Fatal(err)
	}
	s := list[0]
	fmt.Println(s.Name, s.Spec, s.Kind, "next tick one second after the last:", s.NextTick.Sub(s.LastTick))
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// ran the tick of a whole second: true
	// heartbeat @every 1s heartbeat next tick one second after the last: 1s
}

// A small graph created in one call: two jobs count the words of a text
// each, then a third, created waiting, joins their results once both have
// succeeded, reading them by the IDs of its DependsOn.
func ExampleRunner_EnqueueMany_graph() {
	repo := jobs.NewMemoryRepository()
	defer repo.Close()
	// A job whose dependencies have ended is pending at once, and the
	// runner that finished the last of them looks for it at once.
	r, err := jobs.NewRunner(repo, jobs.WithPollInterval(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	jobs.Handle(r, "count", func(ctx context.Context, j *jobs.Job, text string, _ jobs.Reporter) (int, error) {
		return len(strings.Fields(text)), nil
	})
	jobs.Handle(r, "total", func(ctx context.Context, j *jobs.Job, _ struct{}, _ jobs.Reporter) (int, error) {
		total := 0
		for _, id := range j.DependsOn {
			dep, err := r.Get(ctx, id)
			if err != nil {
				return 0, err
			}
			var n int
			if err := json.Unmarshal(dep.Result, &n); err != nil {
				return 0, jobs.Permanent(err)
			}
			total += n
		}
		return total, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	js, err := r.EnqueueMany(ctx,
		jobs.EnqueueRequest{Kind: "count", Payload: "the quick brown fox"},
		jobs.EnqueueRequest{Kind: "count", Payload: "jumps over the lazy dog"},
		jobs.EnqueueRequest{Kind: "total", After: []int{0, 1}}, // after requests 0 and 1
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("total:", js[2].Status, "for", len(js[2].DependsOn), "jobs")
	words, _, err := jobs.AwaitResult[int](ctx, r, js[2].ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("words:", words)
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// total: waiting for 2 jobs
	// words: 9
}
