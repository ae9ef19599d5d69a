package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// bin is the jobs command built once for the tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jobs-cmd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "jobs")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the built command.
type result struct {
	code           int
	stdout, stderr string
}

// jobsCmd runs the built command with args against db.
func jobsCmd(t *testing.T, db string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), "JOBS_DATABASE_URL="+db)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run jobs %v: %v", args, err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// backend is a database for the command and a repository on it in the test.
type backend struct {
	name string
	open func(t *testing.T) (target string, repo *jobsbun.Repository)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (string, *jobsbun.Repository) {
		path := testdb.SQLitePath(t)
		repo, err := jobsqlite.Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { repo.Close() })
		return path, repo
	}},
	{"postgres", func(t *testing.T) (string, *jobsbun.Repository) {
		dsn := testdb.PostgresDSN(t)
		repo, err := jobspg.Open(t.Context(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { repo.Close() })
		return dsn, repo
	}},
}

// eachBackend runs fn on a fresh database of every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, target string, r *jobs.Runner, repo *jobsbun.Repository)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			target, repo := b.open(t)
			var opts []jobs.Option
			if b.name == "postgres" {
				opts = append(opts, jobs.WithNotifier(jobspg.NewListener(repo.DB())))
			}
			r, err := jobs.NewRunner(repo, append(opts, jobs.WithPollInterval(20*time.Millisecond))...)
			require.NoError(t, err)
			fn(t, target, r, repo)
		})
	}
}

func TestListShowCancelPauseStatsPrune(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, db string, r *jobs.Runner, repo *jobsbun.Repository) {
		ctx := t.Context()
		var ids []uuid.UUID
		for i := range 3 {
			j, err := r.Enqueue(ctx, "resize", map[string]int{"n": i}, jobs.InQueue("images"))
			require.NoError(t, err)
			ids = append(ids, j.ID)
		}
		other, err := r.Enqueue(ctx, "mail", nil)
		require.NoError(t, err)

		res := jobsCmd(t, db, "ls", "--json", "--kind", "resize", "--limit", "2")
		require.Equal(t, 0, res.code, res.stderr)
		var page jobs.Page
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &page))
		require.Len(t, page.Jobs, 2)
		require.NotEmpty(t, page.Next)
		res = jobsCmd(t, db, "ls", "--json", "--kind", "resize", "--cursor", page.Next)
		require.Equal(t, 0, res.code, res.stderr)
		var rest jobs.Page
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &rest))
		require.Len(t, rest.Jobs, 1)
		require.Empty(t, rest.Next)

		res = jobsCmd(t, db, "ls", "--status", "pending", "--queue", "default")
		require.Equal(t, 0, res.code, res.stderr)
		require.Contains(t, res.stdout, other.ID.String())
		require.NotContains(t, res.stdout, ids[0].String())

		res = jobsCmd(t, db, "show", ids[1].String())
		require.Equal(t, 0, res.code, res.stderr)
		require.Regexp(t, `status:\s+pending\n`, res.stdout)
		require.Regexp(t, `payload:\s+\{"n": ?1\}`, res.stdout)
		res = jobsCmd(t, db, "show", ids[1].String(), "--json")
		require.Equal(t, 0, res.code, res.stderr)
		var shown jobs.Job
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &shown))
		require.Equal(t, ids[1], shown.ID)

		res = jobsCmd(t, db, "cancel", ids[0].String(), ids[0].String())
		require.Equal(t, 1, res.code, "canceling a canceled job is a conflict")
		require.Contains(t, res.stdout, ids[0].String()+" canceled")
		require.Contains(t, res.stderr, "jobs cancel: request cancel "+ids[0].String()+": job is already canceled")
		j, err := r.Get(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, j.Status)

		res = jobsCmd(t, db, "pause", "images")
		require.Equal(t, 0, res.code, res.stderr)
		s, err := r.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"images"}, s.Paused)
		res = jobsCmd(t, db, "stats")
		require.Equal(t, 0, res.code, res.stderr)
		require.Regexp(t, `images\s+2\s+0\s+0\s+0\s+1\s+paused`, res.stdout)
		require.Regexp(t, `total\s+3\s+0\s+0\s+0\s+1`, res.stdout)
		res = jobsCmd(t, db, "resume", "images")
		require.Equal(t, 0, res.code, res.stderr)
		res = jobsCmd(t, db, "stats", "--json")
		require.Equal(t, 0, res.code, res.stderr)
		var counted jobs.Stats
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &counted))
		require.Empty(t, counted.Paused)
		require.Equal(t, 1, counted.ByStatus[jobs.StatusCanceled])

		res = jobsCmd(t, db, "prune", "--older-than", "1h")
		require.Equal(t, 0, res.code, res.stderr)
		require.Contains(t, res.stdout, "pruned 0 jobs")
		res = jobsCmd(t, db, "prune", "--older-than", "0s")
		require.Equal(t, 0, res.code, res.stderr)
		require.Contains(t, res.stdout, "pruned 1 jobs")
		_, err = r.Get(ctx, ids[0])
		require.ErrorIs(t, err, jobs.ErrNotFound)

		res = jobsCmd(t, db, "show", ids[0].String())
		require.Equal(t, 1, res.code)
		require.Contains(t, res.stderr, "not found")
	})
}

func TestWatchFollowsARunningJob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, db string, r *jobs.Runner, repo *jobsbun.Repository) {
		ctx, cancel := context.WithCancel(t.Context())
		release := make(chan struct{})
		jobs.Handle(r, "segments", func(ctx context.Context, job *jobs.Job, in string, rep jobs.Reporter) (string, error) {
			if err := rep.Append(map[string]string{"text": "hello"}); err != nil {
				return "", err
			}
			if err := rep.Checkpoint(ctx, 1); err != nil {
				return "", err
			}
			if err := rep.Report(0.5, "segment 1/2"); err != nil {
				return "", err
			}
			<-release
			if err := rep.Append("world"); err != nil {
				return "", err
			}
			if in == "fail" {
				return "", jobs.Permanent(errors.New("the model crashed"))
			}
			return "done", nil
		})
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		job, err := r.Enqueue(ctx, "segments", "ok")
		require.NoError(t, err)
		cmd := exec.CommandContext(t.Context(), bin, "watch", "--db", db, job.ID.String())
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		require.True(t, lines.Scan(), "the first item while the job runs")
		require.Equal(t, "hello", lines.Text())
		close(release)
		require.True(t, lines.Scan())
		require.Equal(t, "world", lines.Text())
		require.False(t, lines.Scan(), "nothing after the items")
		require.NoError(t, cmd.Wait(), stderr.String())
		require.Contains(t, stderr.String(), "100%")

		failing, err := r.Enqueue(ctx, "segments", "fail")
		require.NoError(t, err)
		res := jobsCmd(t, db, "watch", failing.ID.String(), "--json")
		require.Equal(t, 1, res.code, res.stderr)
		require.Contains(t, res.stderr, "failed: the model crashed")
		out := strings.Split(strings.TrimSpace(res.stdout), "\n")
		require.JSONEq(t, `{"item":{"seq":2,"data":"world"}}`, out[len(out)-2], "the last item before the end state")
		require.Contains(t, out[len(out)-1], `"status":"failed"`)
	})
}

func TestCancelStopsARunningHandler(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, db string, r *jobs.Runner, repo *jobsbun.Repository) {
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{})
		jobs.Handle(r, "long", func(ctx context.Context, job *jobs.Job, in any, rep jobs.Reporter) (any, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		job, err := r.Enqueue(ctx, "long", nil)
		require.NoError(t, err)
		<-started
		res := jobsCmd(t, db, "cancel", job.ID.String())
		require.Equal(t, 0, res.code, res.stderr)
		require.Contains(t, res.stdout, "cancel requested")
		ended, err := r.Await(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCanceled, ended.Status)
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	res := jobsCmd(t, db, "ls")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "no database at "+db)
	_, err := os.Stat(db)
	require.ErrorIs(t, err, os.ErrNotExist, "a mistyped path creates nothing")
	res = jobsCmd(t, db, "migrate")
	require.Equal(t, 0, res.code, res.stderr)
	require.Regexp(t, `schema migrated from version 0 to \d+`, res.stdout)
	res = jobsCmd(t, db, "migrate")
	require.Regexp(t, `schema up to date \(version \d+\)`, res.stdout)

	for _, tt := range []struct {
		args []string
		code int
		out  string // in stderr
	}{
		{nil, 2, "usage: jobs COMMAND"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"ls", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"ls", "--status", "done"}, 2, `unknown status "done"`},
		{[]string{"ls", "--limit", "0"}, 2, "--limit 0 is outside 1 to 1000"},
		{[]string{"ls", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"show"}, 2, "give one job ID"},
		{[]string{"show", "42"}, 2, `"42" is not a job ID`},
		{[]string{"cancel"}, 2, "give at least one job ID"},
		{[]string{"pause"}, 2, "give one queue name"},
		{[]string{"pause", strings.Repeat("q", 300)}, 1, "over the limit"},
		{[]string{"prune"}, 2, "--older-than is required"},
		{[]string{"prune", "--older-than", "-1h"}, 2, "is not an age"},
		{[]string{"watch", uuid.NewString()}, 1, "not found"},
	} {
		res := jobsCmd(t, db, tt.args...)
		require.Equal(t, tt.code, res.code, "jobs %v: %s", tt.args, res.stderr)
		require.Contains(t, res.stderr, tt.out, "jobs %v", tt.args)
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"help", "watch"}, {"watch", "-h"}, {"prune", "--help"}} {
		res := jobsCmd(t, db, args...)
		require.Equal(t, 0, res.code, "jobs %v: %s", args, res.stderr)
		require.Contains(t, res.stdout, "usage: jobs", "jobs %v", args)
	}
}
