package proctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// envChild, when set, makes the test binary a worker process: TestMain runs
// childMain with the JSON childConfig in the variable instead of the tests.
const envChild = "JOBS_PROCTEST_CHILD"

// childConfig is what a worker process is told by its parent.
type childConfig struct {
	Backend  string        // "sqlite" or "postgres"
	URL      string        // SQLite file path or PostgreSQL DSN
	Ledger   string        // this process's ledger file
	Workers  int           // runner concurrency
	Lease    time.Duration // runner lease; 0 keeps the default
	Poll     time.Duration // runner poll interval; 0 keeps the default
	NoNotify bool          // PostgreSQL: run without the LISTEN/NOTIFY listener
	// Refresh is the runner's refresh interval; 0 keeps the default.
	Refresh time.Duration
	// Schedules, when above 0, declares that many schedules, "s000" on,
	// each ticking every second with CatchUp, of kind kindTick.
	Schedules int
}

// The kinds the worker process handles. Each writes "start" to the ledger
// when it begins and "done" just before it returns successfully: the side
// effect whose count the tests check.
const (
	kindNoop   = "noop"   // start, done
	kindWork   = "work"   // start, sleep payload.MS, done; each line ends with the wall clock in UnixNano
	kindBlock1 = "block1" // attempt 1: start, then block until ctx ends (ctxdone); later attempts: start, done
	kindPause1 = "pause1" // attempt 1: start, report progress every 20 ms until ctx ends (ctxdone); later: start, done
	kindWait   = "wait"   // start, block until ctx ends, then ctxdone with the cause and the wall clock in UnixNano
	kindSteps  = "steps"  // start at the checkpoint; per step: "step" with its number, sleep payload.MS, append it, checkpoint; done
	kindTick   = "tick"   // a schedule's job (payload: the schedule's name): start, done
	// kindLimited is kindWork under the limits of limitedKind (limits_test.go); its lines carry the
	// job's concurrency key before the wall clock.
	kindLimited = "limited"
	kindNode    = "node" // a job of a graph (deps_test.go): start, done, each with the wall clock; fails permanently when payload.Fail
	kindJoin    = "join" // a batch's callback (deps_test.go): start, done, each with the wall clock
)

// nodePayload is the payload of kindNode.
type nodePayload struct {
	Fail bool `json:"fail,omitempty"`
}

// stepsPayload is the payload of kindSteps.
type stepsPayload struct {
	Steps int `json:"steps"`
	MS    int `json:"ms"`
}

// workPayload is the payload of kindWork.
type workPayload struct {
	MS int `json:"ms"`
}

// childMain runs one worker process until SIGTERM and returns its exit code.
func childMain(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Pdeathsig follows the parent's thread, not the process; also stop
	// when the parent is gone.
	parent := os.Getppid()
	go func() {
		for {
			time.Sleep(200 * time.Millisecond)
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "child: parent gone, exiting")
				os.Exit(3)
			}
		}
	}()
	if err := runChild(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

func runChild(ctx context.Context, cfg childConfig) error {
	led, err := openLedger(cfg.Ledger)
	if err != nil {
		return err
	}
	defer led.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var (
		repo *jobsbun.Repository
		opts []jobs.Option
	)
	switch cfg.Backend {
	case "sqlite":
		repo, err = jobsqlite.Open(ctx, cfg.URL)
	case "postgres":
		repo, err = jobspg.Open(ctx, cfg.URL, jobspg.WithMaxOpenConns(cfg.Workers+4))
	default:
		err = fmt.Errorf("unknown backend %q", cfg.Backend)
	}
	if err != nil {
		return err
	}
	defer repo.Close()
	var listener *jobspg.Listener
	if cfg.Backend == "postgres" && !cfg.NoNotify {
		listener = jobspg.NewListener(repo.DB(), jobspg.WithListenerLogger(log),
			jobspg.WithReconnectBackoff(20*time.Millisecond, time.Second))
		opts = append(opts, jobs.WithNotifier(listener))
	}
	if cfg.Refresh > 0 {
		opts = append(opts, jobs.WithRefreshInterval(cfg.Refresh))
	}
	if cfg.Lease > 0 {
		opts = append(opts, jobs.WithLeaseDuration(cfg.Lease))
	}
	if cfg.Poll > 0 {
		opts = append(opts, jobs.WithPollInterval(cfg.Poll))
	}
	pid := os.Getpid()
	r, err := jobs.NewRunner(&recordingRepo{JobRepository: repo, bun: repo, led: led}, append(opts,
		jobs.WithConcurrency(cfg.Workers),
		jobs.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond),
		jobs.WithShutdown(2*time.Second, 0), jobs.WithLogger(log), jobs.WithRetention(0))...)
	if err != nil {
		return err
	}
	r.Handle(kindNoop, func(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid)
		led.write("done", j.ID, j.Attempt, pid)
		return nil, nil
	})
	r.Handle(kindWork, func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid, wallClock())
		var p workPayload
		_ = json.Unmarshal(j.Payload, &p)
		t := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			led.write("ctxdone", j.ID, j.Attempt, pid, string(jobs.CodeOf(context.Cause(ctx))), wallClock())
			return nil, ctx.Err()
		case <-t.C:
		}
		led.write("done", j.ID, j.Attempt, pid, wallClock())
		return nil, nil
	})
	firstBlocks := func(report bool) func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
		return func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			led.write("start", j.ID, j.Attempt, pid, wallClock())
			if j.Attempt > 1 {
				if report {
					_ = p.Report(1, fmt.Sprintf("done by %d", pid))
				}
				led.write("done", j.ID, j.Attempt, pid)
				return nil, nil
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					led.write("ctxdone", j.ID, j.Attempt, pid, string(jobs.CodeOf(context.Cause(ctx))))
					return nil, ctx.Err()
				case <-tick.C:
					if report {
						_ = p.Report(0.5, fmt.Sprintf("pid %d tick %d", pid, n))
					}
				}
			}
		}
	}
	r.Handle(kindWait, func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid)
		<-ctx.Done()
		led.write("ctxdone", j.ID, j.Attempt, pid, string(jobs.CodeOf(context.Cause(ctx))), wallClock())
		return nil, ctx.Err()
	})
	r.Handle(kindSteps, func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid)
		var in stepsPayload
		_ = json.Unmarshal(j.Payload, &in)
		var next int
		if _, err := j.LoadCheckpoint(&next); err != nil {
			return nil, jobs.Permanent(err)
		}
		for ; next < in.Steps; next++ {
			led.write("step", j.ID, j.Attempt, pid, strconv.Itoa(next))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(in.MS) * time.Millisecond):
			}
			if err := p.Append(next); err != nil {
				return nil, err
			}
			if err := p.Checkpoint(ctx, next+1); err != nil {
				return nil, err
			}
		}
		led.write("done", j.ID, j.Attempt, pid)
		return nil, nil
	})
	r.Handle(kindTick, func(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid)
		led.write("done", j.ID, j.Attempt, pid)
		return nil, nil
	})
	for i := range cfg.Schedules {
		name := fmt.Sprintf("s%03d", i)
		if err := r.Schedule(name, jobs.Schedule{Spec: "@every 1s", Kind: kindTick, Payload: name, CatchUp: true}); err != nil {
			return err
		}
	}
	r.Handle(kindLimited, func(ctx context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		key := j.ConcurrencyKey
		led.write("start", j.ID, j.Attempt, pid, key, wallClock())
		var p workPayload
		_ = json.Unmarshal(j.Payload, &p)
		t := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			led.write("ctxdone", j.ID, j.Attempt, pid, key, wallClock())
			return nil, ctx.Err()
		case <-t.C:
		}
		led.write("done", j.ID, j.Attempt, pid, key, wallClock())
		return nil, nil
	}, jobs.WithLimit(limitedKind))
	r.Handle(kindNode, func(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid, wallClock())
		var p nodePayload
		_ = json.Unmarshal(j.Payload, &p)
		if p.Fail {
			led.write("fail", j.ID, j.Attempt, pid, wallClock())
			return nil, jobs.Permanent(errors.New("this node fails"))
		}
		led.write("done", j.ID, j.Attempt, pid, wallClock())
		return nil, nil
	})
	r.Handle(kindJoin, func(_ context.Context, j *jobs.Job, _ jobs.Reporter) (json.RawMessage, error) {
		led.write("start", j.ID, j.Attempt, pid, wallClock())
		led.write("done", j.ID, j.Attempt, pid, wallClock())
		return nil, nil
	})
	r.Handle(kindBlock1, firstBlocks(false))
	r.Handle(kindPause1, firstBlocks(true))

	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	if listener != nil {
		for !listener.Connected() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	fmt.Println("ready")
	return <-runErr
}

// wallClock is the time a ledger line may end with, in UnixNano (see
// entry.at).
func wallClock() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }

// recordingRepo writes to the ledger every write that fencing refused,
// every storage error that reached the runner, and every rescue that it
// reported ("rescued job_id attempt pid status wall_clock").
type recordingRepo struct {
	jobs.JobRepository
	bun *jobsbun.Repository // the same repository, for its owner locks
	led *ledgerFile
}

func (r *recordingRepo) record(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range joined(err) {
		je, _ := errors.AsType[*jobs.Error](e)
		switch {
		case errors.Is(e, jobs.ErrLeaseLost) && je != nil:
			r.led.writeLine(fmt.Sprintf("fenced %s %s %d", je.JobID, op, os.Getpid()))
		case jobs.CodeOf(e) == jobs.ErrUnavailable || jobs.CodeOf(e) == "internal":
			r.led.writeLine(fmt.Sprintf("error %s %s %d %q", op, jobs.CodeOf(e), os.Getpid(), e.Error()))
		}
	}
	return err
}

// joined returns the errors that err joins, through every level: a batch
// call may return a join of joins (jobsbun.Repository.Finish does), and each
// job refused in it must be recorded.
func joined(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, joined(e)...)
	}
	return out
}

func (r *recordingRepo) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	js, err := r.JobRepository.Claim(ctx, q)
	return js, r.record("claim", err)
}

func (r *recordingRepo) UpdateProgress(ctx context.Context, lease time.Duration, ups ...jobs.ProgressUpdate) error {
	return r.record("progress", r.JobRepository.UpdateProgress(ctx, lease, ups...))
}

func (r *recordingRepo) Heartbeat(ctx context.Context, lease time.Duration, ls ...jobs.Lease) error {
	return r.record("heartbeat", r.JobRepository.Heartbeat(ctx, lease, ls...))
}

func (r *recordingRepo) Finish(ctx context.Context, cs ...jobs.Completion) error {
	return r.record("finish", r.JobRepository.Finish(ctx, cs...))
}

func (r *recordingRepo) Release(ctx context.Context, ls ...jobs.Lease) error {
	return r.record("release", r.JobRepository.Release(ctx, ls...))
}

func (r *recordingRepo) RescueExpired(ctx context.Context, limit int) ([]*jobs.Job, error) {
	js, err := r.JobRepository.RescueExpired(ctx, limit)
	for _, j := range js {
		r.led.writeLine(fmt.Sprintf("rescued %s %d %d %s %s", j.ID, j.Attempt, os.Getpid(), j.Status, wallClock()))
	}
	return js, r.record("rescue", err)
}

func (r *recordingRepo) CancelRequests(ctx context.Context, owner string) ([]uuid.UUID, error) {
	ids, err := r.JobRepository.CancelRequests(ctx, owner)
	return ids, r.record("cancel requests", err)
}

// HoldOwner and RescueDead pass the owner locks of jobsbun through, so
// that the runner finds them on this wrapper.
func (r *recordingRepo) HoldOwner(ctx context.Context, owner string) (func(), error) {
	return r.bun.HoldOwner(ctx, owner)
}

func (r *recordingRepo) RescueDead(ctx context.Context, limit int) ([]*jobs.Job, error) {
	js, err := r.bun.RescueDead(ctx, limit)
	for _, j := range js {
		r.led.writeLine(fmt.Sprintf("rescued %s %d %d %s %s", j.ID, j.Attempt, os.Getpid(), j.Status, wallClock()))
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return js, err
	}
	return js, r.record("rescue dead", err)
}
