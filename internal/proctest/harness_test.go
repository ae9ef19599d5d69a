package proctest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if raw := os.Getenv(envChild); raw != "" {
		os.Exit(childMain(raw))
	}
	goleak.VerifyTestMain(m)
}

// envLong turns on the long suites (minutes of real processes); .ci/run
// sets it.
const envLong = "JOBS_LONG_TESTS"

// long skips the test unless the long suites are on.
func long(t testing.TB) {
	t.Helper()
	if os.Getenv(envLong) == "" {
		t.Skipf("long real-process suite: set %s=1 to run it", envLong)
	}
}

// cluster is a set of worker processes (this test binary, re-executed) on
// one database, plus the parent's own repository to enqueue and observe.
type cluster struct {
	t    testing.TB
	cfg  childConfig
	dir  string
	repo *jobsbun.Repository

	mu    sync.Mutex
	procs map[int]*proc
}

// proc is one running worker process.
type proc struct {
	cmd    *exec.Cmd
	pid    int
	exited chan struct{} // closed when the process has been reaped
	err    error         // its exit status, once exited is closed
}

// backendNames are the backends a test runs on.
var backendNames = []string{"sqlite", "postgres"}

// newCluster prepares a database of the backend (skipping PostgreSQL
// without its DSN) and returns a cluster with no process yet. appName, when
// set, names the PostgreSQL connections of the workers.
func newCluster(t testing.TB, backend string, cfg childConfig, appName string) *cluster {
	t.Helper()
	dir := ledgerDir(t)
	cfg.Backend = backend
	var (
		repo *jobsbun.Repository
		err  error
	)
	switch backend {
	case "sqlite":
		cfg.URL = filepath.Join(t.TempDir(), "jobs.db")
		repo, err = jobsqlite.Open(t.Context(), cfg.URL)
	case "postgres":
		cfg.URL = testdb.PostgresDSN(t)
		repo, err = jobspg.Open(t.Context(), cfg.URL, jobspg.WithMaxOpenConns(4))
		if appName != "" {
			cfg.URL += "&application_name=" + appName
		}
	}
	require.NoError(t, err)
	c := &cluster{t: t, cfg: cfg, dir: dir, repo: repo, procs: map[int]*proc{}}
	t.Cleanup(func() {
		c.stopAll()
		_ = repo.Close()
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "*.stderr"))
			for _, name := range logs {
				b, _ := os.ReadFile(name)
				if len(b) > 0 {
					t.Logf("%s:\n%s", filepath.Base(name), tail(string(b), 3000))
				}
			}
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// start launches one worker process and waits until it is ready (its
// runner is running and, on PostgreSQL, its listener connected).
func (c *cluster) start() *proc {
	c.t.Helper()
	// The ledger is named before the PID is known: a sequence number.
	c.mu.Lock()
	seq := len(c.procs)
	c.mu.Unlock()
	cfg := c.cfg
	cfg.Ledger = filepath.Join(c.dir, fmt.Sprintf("%03d-%d.ledger", seq, time.Now().UnixNano()))
	raw, err := json.Marshal(cfg)
	require.NoError(c.t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(raw))
	// A worker must never outlive the test: it dies with its parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := os.Create(strings.TrimSuffix(cfg.Ledger, ".ledger") + ".stderr")
	require.NoError(c.t, err)
	defer stderr.Close()
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(c.t, err)
	require.NoError(c.t, cmd.Start())
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		for sc.Scan() {
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	c.mu.Lock()
	c.procs[p.pid] = p
	c.mu.Unlock()
	select {
	case ok := <-ready:
		require.True(c.t, ok, "worker process %d did not get ready", p.pid)
	case <-time.After(30 * time.Second):
		c.t.Fatalf("worker process %d not ready after 30s", p.pid)
	}
	return p
}

// startN launches n worker processes.
func (c *cluster) startN(n int) []*proc {
	ps := make([]*proc, n)
	for i := range ps {
		ps[i] = c.start()
	}
	return ps
}

// proc returns the running process with the given PID, or nil.
func (c *cluster) proc(pid int) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[pid]
}

// running returns the processes that have not exited.
func (c *cluster) running() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*proc
	for _, p := range c.procs {
		select {
		case <-p.exited:
		default:
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *proc) int { return a.pid - b.pid })
	return ps
}

// kill SIGKILLs p and waits until it is gone.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

// signal sends sig to p.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// stop asks p to shut down gracefully and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		require.NoError(t, p.err, "worker process %d did not exit cleanly", p.pid)
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("worker process %d ignored SIGTERM for 30s", p.pid)
	}
}

// stopAll stops every process still running; SIGCONT first in case one is
// paused.
func (c *cluster) stopAll() {
	for _, p := range c.running() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.stop(c.t)
	}
}

// enqueue creates n jobs of kind with payload in batches of 1000 and
// returns their IDs.
func (c *cluster) enqueue(n int, kind string, payload any, opts func(*jobs.Job)) []uuid.UUID {
	c.t.Helper()
	raw, err := json.Marshal(payload)
	require.NoError(c.t, err)
	ids := make([]uuid.UUID, 0, n)
	for len(ids) < n {
		batch := make([]*jobs.Job, min(1000, n-len(ids)))
		for i := range batch {
			batch[i] = &jobs.Job{Kind: kind, Payload: raw}
			if opts != nil {
				opts(batch[i])
			}
		}
		require.NoError(c.t, c.repo.Create(c.t.Context(), batch...))
		for _, j := range batch {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// waitFinished waits until the jobs, no others, are all terminal, and
// returns the time it took.
func (c *cluster) waitFinished(total int, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		s, err := c.repo.Stats(c.t.Context())
		require.NoError(c.t, err)
		done := s.ByStatus[jobs.StatusSucceeded] + s.ByStatus[jobs.StatusFailed] + s.ByStatus[jobs.StatusCanceled]
		if done >= total {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %v only %d of %d jobs finished: %v", within, done, total, s.ByStatus)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLedger polls the ledger until cond holds, and returns it.
func (c *cluster) waitLedger(within time.Duration, cond func(*ledger) bool) *ledger {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		l := readLedgers(c.t, c.dir)
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ledger condition not met within %v", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// job reads one job.
func (c *cluster) job(id uuid.UUID) *jobs.Job {
	c.t.Helper()
	j, err := c.repo.Get(context.WithoutCancel(c.t.Context()), id)
	require.NoError(c.t, err)
	return j
}

// checkNoBusyErrors fails when a busy error (SQLITE_BUSY, a locked
// database, a PostgreSQL serialization failure) reached the runner of any
// process: the repository must absorb them. Other storage errors, such as
// a maintenance call cut off by the runner's own deadline while another
// process held SQLite's write lock, are retried by the runner on its next
// tick; they are counted and logged, and any harm they do (a lost lease,
// a job run twice) shows in the other checks.
func checkNoBusyErrors(t testing.TB, l *ledger) {
	t.Helper()
	var busy, other []string
	for _, e := range l.events("error") {
		if strings.Contains(e.rest, "busy") || strings.Contains(e.rest, "locked") {
			busy = append(busy, e.rest)
		} else {
			other = append(other, e.rest)
		}
	}
	if len(other) > 0 {
		t.Logf("%d storage errors were retried by the runners, e.g. %s", len(other), other[0])
	}
	require.Empty(t, busy, "busy errors reached a runner")
}

// checkExactlyOnce checks that every job ran to done exactly once and that
// no other job appears in the ledger.
func checkExactlyOnce(t testing.TB, l *ledger, ids []uuid.UUID) {
	t.Helper()
	want := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	dups, lost := 0, 0
	for _, id := range ids {
		switch n := l.count(id, "done"); {
		case n == 0:
			lost++
		case n > 1:
			dups++
		}
	}
	for id := range l.byJob {
		require.True(t, want[id], "ledger names job %s that was never enqueued", id)
	}
	require.Zero(t, lost, "jobs never done")
	require.Zero(t, dups, "jobs done more than once")
	require.Len(t, l.events("done"), len(ids))
}

// checkAttemptsWithinLimit fails when a job has more attempts than allowed.
func checkAttemptsWithinLimit(t testing.TB, c *cluster) {
	t.Helper()
	var over int
	require.NoError(t, c.repo.DB().QueryRowContext(t.Context(),
		"SELECT count(*) FROM jobs WHERE attempt > max_attempts").Scan(&over))
	require.Zero(t, over, "jobs with more attempts than max_attempts")
}
