package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/examples/internal/transcribe"
	"github.com/jobsmith/jobs/internal/logbuf"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runCLI runs the program in-process with a never-interrupted context.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs logbuf.Buffer
	code = run(context.Background(), func() {}, args, &out, &errs, false)
	return code, out.String(), errs.String()
}

var jobLine = regexp.MustCompile(`job ([0-9a-f-]{36})`)

// segmentLine matches a printed segment and captures its start time.
var segmentLine = regexp.MustCompile(`^ +(\d+\.\d\d)–\d+\.\d\d +(speech|silence) +-?\d+\.\d dB`)

// requireSegments checks that the lines are segments of half a second,
// in order from 0 s, each once, and returns how many there are.
func requireSegments(t *testing.T, lines []string) int {
	t.Helper()
	for i, l := range lines {
		m := segmentLine.FindStringSubmatch(l)
		require.NotNil(t, m, "line %d: %q", i, l)
		require.Equal(t, fmt.Sprintf("%.2f", float64(i)*0.5), m[1], "line %d: %q", i, l)
	}
	return len(lines)
}

func TestTranscribeToneAndResume(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	code, out, errs := runCLI(t, "--tone", "2s", "--delay", "5ms", "--checkpoint", "0", "--db", db)
	require.Equal(t, exitOK, code, errs)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 5, "four segments, then the transcript: %s", out)
	require.Equal(t, 4, requireSegments(t, lines[:4]))
	require.Contains(t, lines[3], "silence  -120.0 dB")
	require.Equal(t, "Transcript (2.0 s, en): speech (1.5 s) silence (0.5 s)", lines[4])
	require.Contains(t, errs, "100%  succeeded")
	id := jobLine.FindStringSubmatch(errs)[1]

	// Following a finished job prints its stored segments and transcript.
	code, again, _ := runCLI(t, "--resume", id, "--db", db)
	require.Equal(t, exitOK, code)
	require.Equal(t, out, again)

	code, out, _ = runCLI(t, "--resume", id, "--db", db, "--json")
	require.Equal(t, exitOK, code)
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 5, "four segments, then the result, as JSON lines: %s", out)
	for i, l := range lines[:4] {
		var s transcribe.Segment
		require.NoError(t, json.Unmarshal([]byte(l), &s), l)
		require.Equal(t, float64(i)*0.5, s.Start)
	}
	require.Contains(t, lines[4], `"text":"speech (1.5 s) silence (0.5 s)"`)

	code, _, errs = runCLI(t, "--resume", uuid.NewString(), "--db", db)
	require.Equal(t, exitFailed, code)
	require.Contains(t, errs, "not found")
}

func TestTranscribeWAVFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wav := filepath.Join(dir, "talk.wav")
	f, err := os.Create(wav)
	require.NoError(t, err)
	require.NoError(t, transcribe.EncodeWAV(f, transcribe.NewTone(time.Second, 300)))
	require.NoError(t, f.Close())
	code, out, errs := runCLI(t, "--delay", "0s", "--lang", "fr", "--db", filepath.Join(dir, "jobs.db"), wav)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, "Transcript (1.0 s, fr): speech (1.0 s)")

	junk := filepath.Join(dir, "junk.wav")
	require.NoError(t, os.WriteFile(junk, []byte("not a wav"), 0o600))
	code, _, errs = runCLI(t, "--db", filepath.Join(dir, "jobs.db"), junk)
	require.Equal(t, exitFailed, code)
	require.Contains(t, errs, "failed: ")
	require.Contains(t, errs, "bad audio")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	for _, args := range [][]string{
		{},
		{"--tone", "2s", "a.wav"},
		{"--tone", "2s", "--resume", uuid.NewString()},
		{"--tone", "3h"},
		{"--tone", "-2s"},
		{"--resume", "abc"},
		{"--resume", "{" + uuid.NewString() + "}"},
		{"missing.wav"},
		{"--tone", "2s", "--lang", "not a language"},
		{"--tone", "2s", "--delay", "1h"},
		{"--tone", "2s", "--checkpoint", "-1s"},
		{"--tone", "2s", "--checkpoint", "2h"},
		{"--nope"},
	} {
		code, _, errs := runCLI(t, append(args, "--db", db)...)
		require.Equal(t, exitUsage, code, "%v: %s", args, errs)
		require.NotEmpty(t, errs)
	}
	code, _, errs := runCLI(t, "-h")
	require.Equal(t, exitOK, code)
	require.Contains(t, errs, "usage: transcribe")
	_, err := os.Stat(db)
	require.ErrorIs(t, err, os.ErrNotExist, "usage errors touch no database")
}

// TestInterruptCancels interrupts a run in-process once it has printed
// five segments: the segments are printed as they arrive, while the job
// runs, and the job ends canceled mid-way with the status 130, having
// printed each segment it did once, in order.
func TestInterruptCancels(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	interrupt, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &logbuf.Buffer{OnWrite: func(s string) {
		if strings.Count(s, "\n") == 5 {
			cancel()
		}
	}}
	errs := &logbuf.Buffer{}
	code := run(interrupt, func() {}, []string{"--tone", "1m", "--delay", "20ms", "--checkpoint", "0", "--db", db}, out, errs, false)
	require.Equal(t, exitInterrupted, code, errs.String())
	requireCanceled(t, db, jobLine.FindStringSubmatch(errs.String())[1])
	n := requireSegments(t, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"))
	require.GreaterOrEqual(t, n, 5)
	require.Less(t, n, 60, "canceled mid-way")
}

// TestSIGINTExits130 builds the program, runs it and presses Ctrl-C.
func TestSIGINTExits130(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "transcribe")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	db := filepath.Join(dir, "jobs.db")
	cmd := exec.CommandContext(t.Context(), bin, "--tone", "1m", "--delay", "20ms", "--db", db)
	id, rest, code := interruptMidway(t, cmd)
	require.Equal(t, exitInterrupted, code, rest)
	require.Contains(t, rest, "canceled")
	requireCanceled(t, db, id)
}

// TestGoRunCtrlCExits1 presses Ctrl-C under "go run", as the README says:
// the terminal interrupts the whole foreground process group, go and the
// program; the program cancels its job and exits 130, which go run reports
// as "exit status 130" before exiting 1 itself.
func TestGoRunCtrlCExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	cmd := exec.CommandContext(t.Context(), "go", "run", ".", "--tone", "1m", "--delay", "20ms", "--db", db)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, like a terminal's foreground job
	id, rest, code := interruptMidway(t, cmd)
	require.Equal(t, 1, code, rest)
	require.Contains(t, rest, "canceled\n")
	require.Contains(t, rest, "exit status 130\n")
	requireCanceled(t, db, id)
}

// interruptMidway starts cmd, waits until its job has done 12 segments,
// sends SIGINT to cmd's process group when it has one of its own (as a
// terminal's Ctrl-C does), else to cmd, and returns the job's ID, the
// stderr after the interrupt and the exit status.
func interruptMidway(t *testing.T, cmd *exec.Cmd) (id, rest string, code int) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
		pgid := cmd.Process.Pid
		t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }) // go run's child too, should the test stop early
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := jobLine.FindStringSubmatch(sc.Text()); m != nil {
			id = m[1]
		}
		if strings.Contains(sc.Text(), "segment 12/") {
			break
		}
	}
	require.NotEmpty(t, id)
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
		require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	} else {
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	}
	var b strings.Builder
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	exitErr, ok := err.(*exec.ExitError)
	require.True(t, ok, "%v", err)
	return id, b.String(), exitErr.ExitCode()
}

func requireCanceled(t *testing.T, db, id string) {
	t.Helper()
	repo, err := jobsqlite.Open(t.Context(), db)
	require.NoError(t, err)
	defer repo.Close()
	job, err := repo.Get(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCanceled, job.Status)
	require.Less(t, job.Progress.Fraction, 0.5, "canceled mid-way")
}
