package main

import (
	"bufio"
	"context"
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

	"github.com/jobsmith/jobs"
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
	} {
		var stderr logbuf.Buffer
		code := run(t.Context(), getenv(tc.env), io.Discard, &stderr)
		require.Equal(t, exitConfig, code)
		require.Contains(t, stderr.String(), "httpserver: invalid configuration:")
		require.Contains(t, stderr.String(), tc.want)
	}

	file := filepath.Join(t.TempDir(), "plain-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	var stderr logbuf.Buffer
	code := run(t.Context(), getenv(map[string]string{"APP_DATABASE_URL": file + "/jobs.db"}), io.Discard, &stderr)
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
		done <- run(ctx, getenv(env), pw, stderr)
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
	dir := t.TempDir()
	bin := filepath.Join(dir, "httpserver")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.CommandContext(t.Context(), bin)
		cmd.Env = append(os.Environ(), "APP_ADDR=127.0.0.1:0", "APP_DATABASE_URL="+filepath.Join(dir, sig.String()+".db"))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr logbuf.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err, "stderr: %s", stderr.String())
		require.Contains(t, line, "listening on http://127.0.0.1:")
		require.NoError(t, cmd.Process.Signal(sig))
		require.NoError(t, cmd.Wait(), "%v: exit 0; stderr: %s", sig, stderr.String())
		require.Contains(t, stderr.String(), "msg=stopped")
	}
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
