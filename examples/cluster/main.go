// Command cluster shows jobs spread over several worker processes that share
// one PostgreSQL database: it starts the workers (this program again, in
// worker mode), enqueues jobs, waits for all of them through LISTEN/NOTIFY,
// and prints how many each process ran. With -kill it SIGKILLs one worker
// half-way: its jobs come back after the lease expires and the others run
// them, so the total still adds up (delivery is at-least-once).
//
// Run it from the repository root against any PostgreSQL database (it works
// in a schema of its own, created if missing):
//
//	go run ./examples/cluster -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./examples/cluster -db "$APP_DATABASE_URL" -workers 4 -jobs 2000 -kill
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/uptrace/bun"
)

// envWorker, when set, makes the program a worker process with that name.
const envWorker = "JOBS_CLUSTER_WORKER"

// kind is the demo's job: it "renders" for a few milliseconds, reporting
// progress, and returns who ran it.
const kind = "render"

// Frame is the payload of a render job.
type Frame struct {
	N  int `json:"n"`
	MS int `json:"ms"` // how long rendering takes
}

// Rendered is the result of a render job.
type Rendered struct {
	Frame  int    `json:"frame"`
	Worker string `json:"worker"`
	PID    int    `json:"pid"`
}

// config is the demo's command line.
type config struct {
	DB      string        // PostgreSQL URL
	Schema  string        // schema the demo works in
	Workers int           // worker processes
	Jobs    int           // jobs to enqueue
	Kill    bool          // SIGKILL one worker half-way
	Lease   time.Duration // the workers' lease
}

func main() {
	log.SetFlags(0)
	if name := os.Getenv(envWorker); name != "" {
		if err := workerMain(name); err != nil {
			log.Fatalf("worker %s: %v", name, err)
		}
		return
	}
	var c config
	flag.StringVar(&c.DB, "db", os.Getenv("APP_DATABASE_URL"), "PostgreSQL URL (default $APP_DATABASE_URL)")
	flag.StringVar(&c.Schema, "schema", "jobs_cluster_demo", "schema to work in (created if missing)")
	flag.IntVar(&c.Workers, "workers", 3, "worker processes")
	flag.IntVar(&c.Jobs, "jobs", 600, "jobs to run")
	flag.BoolVar(&c.Kill, "kill", false, "SIGKILL one worker half-way through")
	flag.DurationVar(&c.Lease, "lease", 2*time.Second, "the workers' lease: a killed worker's jobs return after about 1.5 leases")
	flag.Parse()
	if c.DB == "" {
		log.Fatal("cluster: give a PostgreSQL URL with -db or $APP_DATABASE_URL")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		log.Fatalf("cluster: %v", err)
	}
}

// run is the coordinator: it prepares the schema, starts the workers,
// enqueues the jobs, waits for them and prints the tally to out.
func run(ctx context.Context, c config, out io.Writer) error {
	if c.Workers < 1 || c.Jobs < 1 {
		return errors.New("need at least one worker and one job")
	}
	dsn, err := inSchema(ctx, c.DB, c.Schema)
	if err != nil {
		return err
	}
	repo, err := jobspg.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer repo.Close()
	// The coordinator runs no handler: it enqueues for the workers and
	// follows the jobs through the listener.
	listener := jobspg.NewListener(repo.DB())
	r, err := jobs.NewRunner(repo, jobs.WithNotifier(listener))
	if err != nil {
		return err
	}

	workers := make([]*worker, c.Workers)
	defer func() {
		for _, w := range workers {
			if w != nil {
				w.stop()
			}
		}
	}()
	for i := range workers {
		if workers[i], err = startWorker(ctx, fmt.Sprintf("worker-%d", i+1), dsn, c.Lease); err != nil {
			return err
		}
		fmt.Fprintf(out, "started %s (pid %d)\n", workers[i].name, workers[i].pid())
	}

	begin := time.Now()
	reqs := make([]jobs.EnqueueRequest, c.Jobs)
	for i := range reqs {
		reqs[i] = jobs.EnqueueRequest{Kind: kind, Payload: Frame{N: i + 1, MS: 5 + rand.N(20)},
			Options: []jobs.EnqueueOption{jobs.WithMaxAttempts(5)}}
	}
	enqueued, err := r.EnqueueMany(ctx, reqs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "enqueued %d jobs\n", len(enqueued))

	var (
		mu       sync.Mutex
		byPID    = map[int]int{}
		firstErr error
		wg       sync.WaitGroup
		done     int
	)
	killed := -1
	for _, j := range enqueued {
		wg.Go(func() {
			res, _, err := jobs.AwaitResult[Rendered](ctx, r, j.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpOr(firstErr, err)
				return
			}
			byPID[res.PID]++
			done++
			if c.Kill && killed < 0 && done == len(enqueued)/2 {
				killed = 0
				workers[0].kill()
				fmt.Fprintf(out, "killed %s (pid %d) with SIGKILL after %d jobs\n", workers[0].name, workers[0].pid(), done)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	took := time.Since(begin)

	fmt.Fprintf(out, "\n%d jobs done in %v (%.0f jobs/s)\n", done, took.Round(time.Millisecond), float64(done)/took.Seconds())
	for _, w := range workers {
		note := ""
		if w.killed {
			note = "  (killed half-way)"
		}
		fmt.Fprintf(out, "  %-10s pid %-7d ran %5d%s\n", w.name, w.pid(), byPID[w.pid()], note)
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// inSchema creates schema if missing and returns dsn with its connections'
// search_path set to it, so the demo's tables stay out of the way.
func inSchema(ctx context.Context, dsn, schema string) (string, error) {
	db, err := jobspg.OpenDB(ctx, dsn, jobspg.WithMaxOpenConns(1))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS ?", bun.Ident(schema)); err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// worker is one worker process, started by the coordinator.
type worker struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	killed bool
}

func (w *worker) pid() int { return w.cmd.Process.Pid }

// startWorker runs this program again in worker mode and waits until it is
// ready.
func startWorker(ctx context.Context, name, dsn string, lease time.Duration) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envWorker+"="+name, "JOBS_CLUSTER_DSN="+dsn, "JOBS_CLUSTER_LEASE="+lease.String())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the demo
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &worker{name: name, cmd: cmd, exited: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "ready"
		for sc.Scan() {
		}
		_ = cmd.Wait()
		close(w.exited)
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("%s did not start", name)
		}
		return w, nil
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

// kill SIGKILLs the worker, as a crash would.
func (w *worker) kill() {
	w.killed = true
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// stop asks the worker to shut down gracefully and waits.
func (w *worker) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		w.kill()
	}
}

// workerMain runs a worker process until SIGTERM.
func workerMain(name string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lease, err := time.ParseDuration(os.Getenv("JOBS_CLUSTER_LEASE"))
	if err != nil {
		return err
	}
	repo, err := jobspg.Open(ctx, os.Getenv("JOBS_CLUSTER_DSN"))
	if err != nil {
		return err
	}
	defer repo.Close()
	listener := jobspg.NewListener(repo.DB())
	r, err := jobs.NewRunner(repo, jobs.WithNotifier(listener), jobs.WithConcurrency(4),
		jobs.WithLeaseDuration(lease))
	if err != nil {
		return err
	}
	pid := os.Getpid()
	jobs.Handle(r, kind, func(ctx context.Context, j *jobs.Job, f Frame, p jobs.Reporter) (Rendered, error) {
		t := time.NewTimer(time.Duration(f.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return Rendered{}, ctx.Err()
		case <-t.C:
		}
		_ = p.Report(1, "rendered")
		return Rendered{Frame: f.N, Worker: name, PID: pid}, nil
	})
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	for !listener.Connected() {
		select {
		case err := <-errc:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	fmt.Println("ready")
	return <-errc
}
