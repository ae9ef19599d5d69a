package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

// backend is one repository implementation the runner is tested on.
type backend struct {
	name string
	open func(t *testing.T) jobs.JobRepository
}

// backends are memory and SQLite always, PostgreSQL when its DSN is set.
func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) jobs.JobRepository { return memRepo(t) }},
		{"sqlite", func(t *testing.T) jobs.JobRepository {
			path := testdb.SQLitePath(t)
			open := func() jobs.JobRepository {
				repo, err := jobsqlite.Open(context.Background(), path)
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, repo.Close()) })
				return repo
			}
			repo := open()
			reopeners.Store(repo, open)
			return repo
		}},
		{"postgres", func(t *testing.T) jobs.JobRepository {
			dsn := testdb.PostgresDSN(t)
			open := func() jobs.JobRepository {
				repo, err := jobspg.Open(context.Background(), dsn, jobspg.WithMaxOpenConns(4))
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, repo.Close()) })
				return repo
			}
			repo := open()
			reopeners.Store(repo, open)
			return repo
		}},
	}
}

// reopeners maps a repository to a func that opens another repository on
// the same database, as a second process would.
var reopeners sync.Map

// reopen returns another repository on repo's database: a new connection
// pool for SQL backends, repo itself for memory.
func reopen(t *testing.T, repo jobs.JobRepository) jobs.JobRepository {
	t.Helper()
	if f, ok := reopeners.Load(repo); ok {
		return f.(func() jobs.JobRepository)()
	}
	return repo
}

// memRepo returns a fresh memory repository, closed when the test ends.
func memRepo(t *testing.T) jobs.JobRepository {
	t.Helper()
	m := jobs.NewMemoryRepository()
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// eachBackend runs f as a parallel subtest per backend.
func eachBackend(t *testing.T, f func(t *testing.T, repo jobs.JobRepository)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.open(t))
		})
	}
}

// newRunner returns a runner over repo with fast test timings.
func newRunner(t *testing.T, repo jobs.JobRepository, opts ...jobs.Option) *jobs.Runner {
	t.Helper()
	base := []jobs.Option{
		jobs.WithPollInterval(20 * time.Millisecond),
		jobs.WithRefreshInterval(10 * time.Millisecond),
		jobs.WithProgressInterval(20 * time.Millisecond),
		jobs.WithRetryBackoff(time.Millisecond, 10*time.Millisecond),
		jobs.WithShutdown(time.Second, 0),
	}
	r, err := jobs.NewRunner(repo, append(base, opts...)...)
	require.NoError(t, err)
	return r
}

// start runs r until the test ends and returns a func that stops it and
// returns Run's error.
func start(t *testing.T, r *jobs.Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-errc
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// await waits for the job to finish, with a deadline.
func await(t *testing.T, r *jobs.Runner, id uuid.UUID) *jobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	j, err := r.Await(ctx, id)
	require.NoError(t, err)
	return j
}

// faultRepo wraps a repository to count calls and inject faults.
type faultRepo struct {
	jobs.JobRepository
	mu             sync.Mutex
	finishCalls    int
	progressWrites map[uuid.UUID]int
	beats          map[uuid.UUID]int
	dropBeats      bool  // heartbeats and progress writes do nothing: the process looks dead
	beatErr        error // heartbeats and progress writes fail with this
	failClaims     int   // the next Claim calls that fail as unavailable
	failFinishes   int   // the next Finish calls that fail as unavailable
	failProgress   int   // the next UpdateProgress calls that fail as unavailable
}

var errInjected = &jobs.Error{Code: jobs.ErrUnavailable, Op: "test", Msg: "injected fault"}

// take reports whether to inject a fault, counting it down.
func (f *faultRepo) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *faultRepo) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	if f.take(&f.failClaims) {
		return nil, errInjected
	}
	return f.JobRepository.Claim(ctx, q)
}

func newFaultRepo(r jobs.JobRepository) *faultRepo {
	return &faultRepo{JobRepository: r, progressWrites: map[uuid.UUID]int{}, beats: map[uuid.UUID]int{}}
}

func (f *faultRepo) setDropBeats(v bool)  { f.mu.Lock(); f.dropBeats = v; f.mu.Unlock() }
func (f *faultRepo) setBeatErr(err error) { f.mu.Lock(); f.beatErr = err; f.mu.Unlock() }

func (f *faultRepo) beatFault() (drop bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropBeats, f.beatErr
}

func (f *faultRepo) Heartbeat(ctx context.Context, lease time.Duration, ls ...jobs.Lease) error {
	if drop, err := f.beatFault(); drop || err != nil {
		return err
	}
	f.mu.Lock()
	for _, l := range ls {
		f.beats[l.JobID]++
	}
	f.mu.Unlock()
	return f.JobRepository.Heartbeat(ctx, lease, ls...)
}

func (f *faultRepo) UpdateProgress(ctx context.Context, lease time.Duration, ups ...jobs.ProgressUpdate) error {
	if drop, err := f.beatFault(); drop || err != nil {
		return err
	}
	if f.take(&f.failProgress) {
		return errInjected
	}
	f.mu.Lock()
	for _, u := range ups {
		f.progressWrites[u.Lease.JobID]++
	}
	f.mu.Unlock()
	return f.JobRepository.UpdateProgress(ctx, lease, ups...)
}

func (f *faultRepo) Finish(ctx context.Context, cs ...jobs.Completion) error {
	if f.take(&f.failFinishes) {
		return errInjected
	}
	f.mu.Lock()
	f.finishCalls++
	f.mu.Unlock()
	return f.JobRepository.Finish(ctx, cs...)
}

func (f *faultRepo) progressWritesOf(id uuid.UUID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.progressWrites[id]
}

func (f *faultRepo) beatsOf(id uuid.UUID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.beats[id]
}

func (f *faultRepo) finishes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finishCalls
}

// get reads a job, failing the test on error.
func get(t *testing.T, r *jobs.Runner, id uuid.UUID) *jobs.Job {
	t.Helper()
	j, err := r.Get(context.WithoutCancel(t.Context()), id)
	require.NoError(t, err)
	return j
}

// requireStatus waits until the job has the given status (for state that is
// reached by polling or by another runner).
func requireStatus(t *testing.T, r *jobs.Runner, id uuid.UUID, st jobs.Status) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	require.Eventually(t, func() bool {
		j = get(t, r, id)
		return j.Status == st
	}, 20*time.Second, 5*time.Millisecond, "job never became %s", st)
	return j
}

// recv receives from ch with a deadline.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting on channel")
	}
	panic("unreachable")
}
