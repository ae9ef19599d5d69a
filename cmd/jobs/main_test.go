package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
	"github.com/stretchr/testify/require"
)

// binary is the jobs command built once for the tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jobs-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "jobs")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the binary with args (and JOBS_DATABASE_URL unset).
func cli(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "JOBS_DATABASE_URL=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

// eachDatabase runs f on the databases the binary is tested on: an SQLite file, and
// a PostgreSQL schema when its DSN is set.
func eachDatabase(t *testing.T, f func(t *testing.T, db string, repo jobs.JobRepository)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := testdb.SQLitePath(t)
		repo, err := jobsqlite.Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { repo.Close() })
		f(t, path, repo)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := testdb.PostgresDSN(t)
		repo, err := jobspg.Open(t.Context(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { repo.Close() })
		f(t, dsn, repo)
	})
}

// finished creates a job and finishes its one attempt with st, storing the
// output items, and returns its ID.
func finished(t *testing.T, repo jobs.JobRepository, j *jobs.Job, st jobs.Status, items ...string) uuid.UUID {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, repo.Create(ctx, j))
	c, err := repo.Claim(ctx, jobs.ClaimQuery{Owner: "test", Kinds: []string{j.Kind}, Limit: 1, LeaseDuration: time.Hour})
	require.NoError(t, err)
	require.Len(t, c, 1)
	var out []json.RawMessage
	for _, it := range items {
		out = append(out, json.RawMessage(it))
	}
	require.NoError(t, repo.Finish(ctx, jobs.Completion{Lease: c[0].Lease(), Status: st, Error: "boom " + j.Kind, Output: out}))
	return j.ID
}

func TestCommandsOnEveryDatabase(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, db string, repo jobs.JobRepository) {
		ctx := t.Context()
		bad1 := finished(t, repo, &jobs.Job{Kind: "bad", MaxAttempts: 1, Metadata: map[string]string{"request_id": "r-7"}}, jobs.StatusFailed)
		bad2 := finished(t, repo, &jobs.Job{Kind: "bad", MaxAttempts: 1}, jobs.StatusFailed)
		ok := finished(t, repo, &jobs.Job{Kind: "ok"}, jobs.StatusSucceeded, `"a"`, `{"b":2}`)
		pending := &jobs.Job{Kind: "later", Queue: "q", RunAt: time.Now().Add(time.Hour)}
		require.NoError(t, repo.Create(ctx, pending))

		r := cli(t, "--db", db, "ls", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var page jobs.Page
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
		require.Len(t, page.Jobs, 4)
		r = cli(t, "--db", db, "ls", "--status", "failed")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, bad1.String())
		require.NotContains(t, r.stdout, ok.String())
		r = cli(t, "--db", db, "ls", "--status", "nope")
		require.Equal(t, 2, r.code)
		require.Contains(t, r.stderr, `unknown status "nope"`)

		r = cli(t, "--db", db, "show", bad1.String())
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `status:\s+failed`, r.stdout)
		require.Regexp(t, `metadata request_id:\s+r-7`, r.stdout)
		r = cli(t, "--db", db, "show", uuid.Must(uuid.NewV7()).String())
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "not found")

		r = cli(t, "--db", db, "retry", ok.String())
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "only failed or canceled jobs can be retried")
		r = cli(t, "--db", db, "retry", "--failed")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "retried 2 job(s)\n", r.stdout)
		for _, id := range []uuid.UUID{bad1, bad2} {
			j, err := repo.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, jobs.StatusPending, j.Status)
		}
		r = cli(t, "--db", db, "cancel", "--kind", "bad", "--limit", "1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "canceled 2 job(s)\n", r.stdout)

		r = cli(t, "--db", db, "pause", "q")
		require.Equal(t, 0, r.code, r.stderr)
		r = cli(t, "--db", db, "stats", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var st jobs.Stats
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
		require.Equal(t, []string{"q"}, st.Paused)
		require.Equal(t, 2, st.ByStatus[jobs.StatusCanceled])
		require.NotContains(t, st.OldestPending, pending.Queue, "a job not due yet is not waiting")
		r = cli(t, "--db", db, "stats")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "q (paused)")
		require.Contains(t, r.stdout, "oldest wait")
		r = cli(t, "--db", db, "resume", "q")
		require.Equal(t, 0, r.code, r.stderr)

		r = cli(t, "--db", db, "delete", pending.ID.String())
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "only finished jobs can be deleted")
		r = cli(t, "--db", db, "delete")
		require.Equal(t, 2, r.code, "deleting needs an ID, filters or --all")
		r = cli(t, "--db", db, "delete", "--status", "canceled")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "deleted 2 job(s)\n", r.stdout)
		r = cli(t, "--db", db, "prune", "--older-than", "7d")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "pruned 0 job(s)\n", r.stdout)
		r = cli(t, "--db", db, "delete", "--all")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "deleted 1 job(s)\n", r.stdout)
		s, err := repo.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, s.Total, "only the pending job is left")

		r = cli(t, "--db", db, "migrate")
		require.Equal(t, 0, r.code, r.stderr)
	})
}

func TestWatch(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, db string, repo jobs.JobRepository) {
		ok := finished(t, repo, &jobs.Job{Kind: "ok"}, jobs.StatusSucceeded, `"a"`, `"b"`)
		r := cli(t, "--db", db, "watch", ok.String())
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `1: "a"`)
		require.Contains(t, r.stdout, `2: "b"`)
		require.Contains(t, r.stdout, "100% succeeded")
		bad := finished(t, repo, &jobs.Job{Kind: "bad", MaxAttempts: 1}, jobs.StatusFailed)
		r = cli(t, "--db", db, "watch", "--no-output", bad.String())
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "failed: boom bad")

		// A live job: watch starts before the job does and follows it to
		// the end, items included.
		runner, err := jobs.NewRunner(repo, jobs.WithPollInterval(20*time.Millisecond))
		require.NoError(t, err)
		release := make(chan struct{})
		runner.Handle("live", func(ctx context.Context, j *jobs.Job, p jobs.Reporter) (json.RawMessage, error) {
			<-release
			for i := range 3 {
				if err := p.Append(i); err != nil {
					return nil, err
				}
				if err := p.Checkpoint(ctx, i); err != nil {
					return nil, err
				}
				if err := p.Report(float64(i+1)/3, fmt.Sprintf("step %d", i+1)); err != nil {
					return nil, err
				}
			}
			return nil, nil
		})
		j, err := runner.Enqueue(t.Context(), "live", nil)
		require.NoError(t, err)
		cmd := exec.CommandContext(t.Context(), binary, "--db", db, "watch", j.ID.String())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Start())
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- runner.Run(ctx) }()
		close(release)
		require.NoError(t, cmd.Wait(), stderr.String())
		stop()
		require.NoError(t, <-done)
		out := stdout.String()
		for _, want := range []string{"1: 0", "2: 1", "3: 2", "100% succeeded step 3"} {
			require.Contains(t, out, want)
		}
		require.Less(t, strings.Index(out, "1: 0"), strings.Index(out, "3: 2"), "items in order")
	})
}

func TestUsageErrorsAndHelp(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "jobs.db")
	for _, name := range commandOrder {
		r := cli(t, name, "-h")
		require.Equal(t, 0, r.code, name)
		require.Contains(t, r.stderr, "usage: jobs "+name, name)
	}
	r := cli(t, "help")
	require.Equal(t, 0, r.code)
	for _, name := range commandOrder {
		require.Contains(t, r.stdout, "\n  "+name+" ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "usage: jobs"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"ls"}, "no database"},
		{[]string{"--db", db, "show"}, "expected 1 argument(s)"},
		{[]string{"--db", db, "show", "42"}, `"42" is not a job ID`},
		{[]string{"--db", db, "ls", "--before", "yesterday"}, `--before "yesterday"`},
		{[]string{"--db", db, "ls", "--limit", "5000"}, "--limit 5000"},
		{[]string{"--db", db, "ls", "--nope"}, "flag provided but not defined"},
		{[]string{"--db", db, "retry", "--failed", "--status", "canceled"}, "exclude each other"},
		{[]string{"--db", db, "cancel", uuid.NewString(), "--kind", "k"}, "flag --kind after an argument"},
		{[]string{"--db", db, "cancel", "--kind", "k", uuid.NewString()}, "not both"},
		{[]string{"--db", db, "prune"}, "--older-than is required"},
		{[]string{"--db", db, "prune", "--older-than", "-1h"}, "not an age"},
	} {
		r := cli(t, c.args...)
		require.Equal(t, 2, r.code, "%v: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want, c.args)
	}
	_, err := os.Stat(db)
	require.ErrorIs(t, err, os.ErrNotExist, "a usage error opens no database")
}
