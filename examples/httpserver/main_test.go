package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/jobsmith/jobs/internal/logbuf"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APP_CONCURRENCY": "lots"}, "APP_CONCURRENCY"},
		{map[string]string{"APP_ADDR": "0.0.0.0:8080"}, "APP_AUTH_TOKEN"},
		{map[string]string{"APP_LEASE_DURATION": "500ms"}, `APP_LEASE_DURATION: "500ms" is not a duration from 1s to`},
		{map[string]string{"APP_USER_CONCURRENCY": "0"}, "APP_USER_CONCURRENCY"},
		{map[string]string{"APP_TRANSCRIBE_SLOTS": "-2"}, "APP_TRANSCRIBE_SLOTS"},
		{map[string]string{"APP_CHUNK_SECONDS": "sixty"}, "APP_CHUNK_SECONDS"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, `OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" is not a URL`},
	} {
		var stderr logbuf.Buffer
		code := run(t.Context(), nil, getenv(tc.env), io.Discard, &stderr)
		require.Equal(t, exitConfig, code)
		require.Contains(t, stderr.String(), "httpserver: invalid configuration:")
		require.Contains(t, stderr.String(), tc.want)
	}

	file := filepath.Join(t.TempDir(), "plain-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	var stderr logbuf.Buffer
	code := run(t.Context(), nil, getenv(map[string]string{"APP_DATABASE_URL": file + "/jobs.db"}), io.Discard, &stderr)
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr.String(), "cannot open the database")
}

// TestRunServesAndDrains runs the whole program: it serves a job, and at
// shutdown (the signal's context) stops accepting, hands the running job
// back to pending and returns 0.
func TestRunServesAndDrains(t *testing.T) {
	t.Parallel()
	dbPath := filepath.Join(t.TempDir(), "data", "jobs.db")
	base, stop, code, stderr := startRun(t, map[string]string{
		"APP_DATABASE_URL":  dbPath,
		"APP_SEGMENT_DELAY": "50ms",
		"APP_GRACE_PERIOD":  "50ms",
		"APP_CHUNK_SECONDS": "0", // one job, however long the tone
	})
	res, err := http.Post(base+"/api/transcribe", "application/json", strings.NewReader(`{"audio_url":"tone:10m"}`))
	require.NoError(t, err)
	job := decodeJob(t, mustRead(t, res))
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/api/jobs/" + job.ID.String())
		return err == nil && decodeJob(t, mustRead(t, res)).Status == jobs.StatusRunning
	}, 10*time.Second, 20*time.Millisecond)

	stop()
	require.Equal(t, exitOK, <-code, "stderr: %s", stderr.String())
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "no longer accepting")

	repo, err := jobsqlite.Open(t.Context(), dbPath)
	require.NoError(t, err)
	defer repo.Close()
	stored, err := repo.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusPending, stored.Status, "released for the next start, not lost")
	require.Equal(t, 0, stored.Attempt, "the interrupted attempt is not counted")
}

// startRun runs the program with env (and APP_ADDR 127.0.0.1:0) until the
// returned stop is called; code receives its exit status.
func startRun(t *testing.T, env map[string]string) (base string, stop func(), code <-chan int, stderr *logbuf.Buffer) {
	t.Helper()
	env["APP_ADDR"] = "127.0.0.1:0"
	if env["APP_DATABASE_URL"] == "" {
		env["APP_DATABASE_URL"] = filepath.Join(t.TempDir(), "jobs.db")
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr = &logbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, nil, getenv(env), pw, stderr)
		close(done)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	go io.Copy(io.Discard, pr) // the rest of stdout, until run returns
	base = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "listening on "), "/")
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), line)
	t.Cleanup(func() {
		cancel()
		for range done { // wait for run to return, whether or not the test read its status
		}
	})
	return base, cancel, done, stderr
}

// TestSlowHeadersAreCut: a client that sends its headers slowly
// (slowloris) is disconnected after ReadHeaderTimeout (SE-4).
func TestSlowHeadersAreCut(t *testing.T) {
	t.Parallel()
	base, _, _, _ := startRun(t, map[string]string{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = io.ReadAll(conn) // the server's 408 or a plain close
	require.NoError(t, err)
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, readHeaderTimeout-time.Second)
	require.LessOrEqual(t, elapsed, 10*time.Second)
}

// TestSignalsExitZero builds the program and stops it with SIGINT and
// SIGTERM, as a terminal or a supervisor would.
func TestSignalsExitZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildServer(t)
	dir := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		p := startProcess(t, bin, "APP_DATABASE_URL="+filepath.Join(dir, sig.String()+".db"))
		require.NoError(t, p.cmd.Process.Signal(sig))
		require.NoError(t, p.wait(), "%v: exit 0; stderr: %s", sig, p.stderr.String())
		require.Contains(t, p.stderr.String(), "msg=stopped")
	}
}

// buildServer builds the program into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "httpserver")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// process is the program running as a child process.
type process struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	stderr *logbuf.Buffer
	exited chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's, once exited is closed
}

// wait waits for the process to exit and returns how (see exec.Cmd.Wait).
func (p *process) wait() error {
	<-p.exited
	return p.err
}

// startProcess runs bin with APP_ADDR 127.0.0.1:0 and env (NAME=value)
// until it has printed its URL. A process still running when the test
// ends is killed.
func startProcess(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "APP_ADDR=127.0.0.1:0"), env...)
	listening := make(chan string, 1)
	cmd.Stdout = &logbuf.Buffer{OnWrite: func(written string) {
		if line, _, ok := strings.Cut(written, "\n"); ok {
			select { // the first line only
			case listening <- line:
			default:
			}
		}
	}}
	p := &process{cmd: cmd, stderr: &logbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	var line string
	select {
	case line = <-listening:
	case <-p.exited:
		t.Fatalf("exited before listening: %v; stderr: %s", p.err, p.stderr.String())
	}
	require.Contains(t, line, "listening on http://127.0.0.1:")
	p.base = strings.TrimSuffix(strings.TrimPrefix(line, "listening on "), "/")
	return p
}

// TestKillAndRestartResumes kills the server with SIGKILL in the middle of
// a transcription and starts it again on the same SQLite file. The new
// process takes the job back once the dead one's lease expires
// (APP_LEASE_DURATION=1s) and resumes it at the first segment after its
// last checkpoint: the segments the dead process had appended after that
// checkpoint are neither lost nor repeated, so the output, read through
// the API, holds every segment exactly once, and the progress never falls
// back below the checkpoint. A client that resumes its event stream with
// the Last-Event-ID it got from the dead process gets exactly the rest.
func TestKillAndRestartResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildServer(t)
	dbPath := filepath.Join(t.TempDir(), "jobs.db")
	env := []string{"APP_DATABASE_URL=" + dbPath,
		"APP_SEGMENT_DELAY=20ms", "APP_CHECKPOINT_INTERVAL=100ms", "APP_LEASE_DURATION=1s"}
	const n = 120 // segments of tone:60s, about 2.4 s of work
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	get := func(url string, header ...string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		return res
	}

	first := startProcess(t, bin, env...)
	res, err := http.Post(first.base+"/api/transcribe", "application/json", strings.NewReader(`{"audio_url":"tone:60s"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	job := decodeJob(t, mustRead(t, res))
	// Until ten segments are stored: they are covered by a checkpoint.
	res = get(first.base + "/api/jobs/" + job.ID.String() + "/events")
	before := readEvents(t, res.Body, func(ev sseEvent) bool { return ev.isOutput() && ev.out.Seq >= 10 })
	res.Body.Close()
	seen := before[len(before)-1]
	require.NoError(t, first.cmd.Process.Kill())
	require.ErrorContains(t, first.wait(), "killed")
	require.Equal(t, seqRange(1, seen.out.Seq), outputSeqs(before))

	// What the dead process left: the job running under a lease nobody
	// renews, its output ending exactly where its last checkpoint does.
	repo, err := jobsqlite.Open(ctx, dbPath)
	require.NoError(t, err)
	left, err := repo.Get(ctx, job.ID)
	require.NoError(t, err)
	require.NoError(t, repo.Close())
	require.Equal(t, jobs.StatusRunning, left.Status)
	var st transcribe.State
	ok, err := left.LoadCheckpoint(&st)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(st.Next), left.OutputSeq, "only checkpointed segments are stored")
	require.GreaterOrEqual(t, left.OutputSeq, seen.out.Seq)
	require.Less(t, st.Next, n, "killed mid-way")

	second := startProcess(t, bin, env...)
	res = get(second.base+"/api/jobs/"+job.ID.String()+"/events", "Last-Event-ID", seen.id)
	rest := readEvents(t, res.Body, nil)
	res.Body.Close()
	require.NotEmpty(t, rest)
	require.Equal(t, jobs.StatusSucceeded, rest[len(rest)-1].upd.Status, "stderr: %s", second.stderr.String())
	require.Equal(t, seqRange(seen.out.Seq+1, n), outputSeqs(rest), "the rest of the output after a restart: no gap, no repeat")
	for _, ev := range rest {
		if !ev.isOutput() {
			require.GreaterOrEqual(t, ev.upd.Progress.Fraction, float64(st.Next)/n,
				"the progress does not fall back below the checkpoint (%s)", ev.upd.Progress.Message)
		}
	}

	// The whole output through the API: every segment exactly once.
	res = get(second.base + "/api/jobs/" + job.ID.String() + "/events")
	all := readEvents(t, res.Body, nil)
	res.Body.Close()
	require.Equal(t, seqRange(1, n), outputSeqs(all))
	for _, ev := range all {
		if ev.isOutput() {
			requireSegment(t, ev.out.Seq, ev.out.Data)
		}
	}
	res = get(second.base + "/api/jobs/" + job.ID.String())
	final := decodeJob(t, mustRead(t, res))
	require.Equal(t, jobs.StatusSucceeded, final.Status)
	require.Equal(t, 2, final.Attempt, "the killed attempt and the resumed one")
	require.Equal(t, int64(n), final.OutputSeq)
	var out transcribe.Transcript
	require.NoError(t, json.Unmarshal(final.Result, &out))
	require.Equal(t, n, out.Segments)
	require.Equal(t, strings.TrimSpace(strings.Repeat("speech (1.5 s) silence (0.5 s) ", n/4)), out.Text,
		"the text holds every segment once, those before the checkpoint from it")

	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, second.wait(), "stderr: %s", second.stderr.String())
}

func mustRead(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return b
}

// TestRunOnPostgres: a postgres:// APP_DATABASE_URL selects PostgreSQL.
func TestRunOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := testdb.PostgresDSN(t)
	base, stop, code, stderr := startRun(t, map[string]string{"APP_DATABASE_URL": dsn, "APP_SEGMENT_DELAY": "1ms"})
	require.Contains(t, stderr.String(), "database=postgres")
	require.NotContains(t, stderr.String(), dsn, "no credentials in the log")
	res, err := http.Post(base+"/api/transcribe", "application/json", strings.NewReader(`{"audio_url":"tone:2s"}`))
	require.NoError(t, err)
	job := decodeJob(t, mustRead(t, res))
	res, err = http.Get(base + "/api/jobs/" + job.ID.String() + "/events")
	require.NoError(t, err)
	evs := readEvents(t, res.Body, nil)
	res.Body.Close()
	require.Equal(t, jobs.StatusSucceeded, evs[len(evs)-1].upd.Status)
	stop()
	require.Equal(t, exitOK, <-code, "stderr: %s", stderr.String())
}

// TestRunLimitsUsersAcrossServers runs the whole program twice on one
// SQLite file with APP_USER_CONCURRENCY=1: while user a's first
// transcription runs, a's second waits, though b's, submitted after it,
// starts; once the first is canceled (through the other server) the
// second runs.
func TestRunLimitsUsersAcrossServers(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	env := func() map[string]string {
		return map[string]string{"APP_DATABASE_URL": db,
			"APP_SEGMENT_DELAY": "50ms", "APP_USER_CONCURRENCY": "1", "APP_GRACE_PERIOD": "0s",
			"APP_CHUNK_SECONDS": "0"} // one job per tone, however long
	}
	first, _, _, stderr := startRun(t, env())
	require.Contains(t, stderr.String(), "user_concurrency=1 transcribe_slots=0")
	second, _, _, _ := startRun(t, env())
	post := func(base, body string) *jobs.Job {
		res, err := http.Post(base+"/api/transcribe", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, res.StatusCode)
		return decodeJob(t, mustRead(t, res))
	}
	get := func(base string, id uuid.UUID) *jobs.Job {
		res, err := http.Get(base + "/api/jobs/" + id.String())
		require.NoError(t, err)
		return decodeJob(t, mustRead(t, res))
	}
	waitStatus := func(base string, id uuid.UUID, want jobs.Status) *jobs.Job {
		var j *jobs.Job
		require.Eventually(t, func() bool { j = get(base, id); return j.Status == want },
			time.Minute, 20*time.Millisecond, "job %s to be %s", id, want)
		return j
	}
	a1 := post(first, `{"audio_url":"tone:10m","user":"a"}`)
	a2 := post(second, `{"audio_url":"tone:1s","user":"a"}`)
	b1 := post(second, `{"audio_url":"tone:10m","user":"b"}`)
	require.Equal(t, "a", a1.ConcurrencyKey)
	waitStatus(first, a1.ID, jobs.StatusRunning)
	waitStatus(second, b1.ID, jobs.StatusRunning)
	require.Equal(t, jobs.StatusPending, get(first, a2.ID).Status, "a's second waits while b's, submitted after it, runs")

	res, err := http.Post(second+"/api/jobs/"+a1.ID.String()+"/cancel", "", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res.Body.Close()
	a1 = waitStatus(first, a1.ID, jobs.StatusCanceled)
	a2 = waitStatus(second, a2.ID, jobs.StatusSucceeded)
	require.False(t, a2.StartedAt.Before(a1.FinishedAt), "one after the other")
	require.Equal(t, jobs.StatusRunning, get(first, b1.ID).Status)
}
