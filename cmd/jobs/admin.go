package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
)

// This file holds the commands that change jobs: retry, cancel, delete and
// prune.

func init() {
	commands = append(commands,
		command{"retry", "[flags] ID | --failed | filters", "Run failed or canceled jobs again with a fresh attempt budget.\n" +
			"With an ID, that job; otherwise every failed or canceled job that the filters select\n" +
			"(--failed: the failed ones), --limit per write. A batch job is retried by its ID,\n" +
			"with its jobs that did not succeed; the filters skip batch jobs.", runRetry},
		command{"cancel", "[flags] ID | filters", "Cancel jobs: pending ones at once, running ones are stopped by their runner.\n" +
			"With an ID, that job; otherwise every pending or running job that the filters select.", runCancel},
		command{"delete", "[flags] ID | filters | --all", "Delete finished jobs with their output (never pending or running ones).\n" +
			"With an ID, that job; otherwise every finished job that the filters select (--all: every one).", runDelete},
		command{"prune", "[flags] --older-than AGE", "Delete finished jobs that finished more than AGE ago (such as 7d or 36h).", runPrune},
	)
}

// adminFlags are the flags of retry, cancel and delete.
type adminFlags struct {
	filterFlags
	all    bool
	failed bool
}

// target parses the command line of an admin command: one job ID, or a
// filter (required unless --all, when allowAll).
func (e *env) target(fs *flag.FlagSet, args []string, f *adminFlags) (id uuid.UUID, q jobs.ListQuery, err error) {
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return uuid.Nil, q, err
	}
	if f.failed {
		if f.status != "" {
			return uuid.Nil, q, usagef("--failed and --status exclude each other")
		}
		f.status = string(jobs.StatusFailed)
	}
	switch {
	case len(pos) == 1 && (f.set() || f.all || f.limit != 0):
		return uuid.Nil, q, usagef("give a job ID or filters, not both")
	case len(pos) == 1:
		id, err := parseID(pos[0])
		return id, q, err
	case !f.set() && !f.all:
		return uuid.Nil, q, usagef("give a job ID, or filters (--status, --kind, --queue, --before) to act on many jobs")
	}
	q, err = f.query(time.Now())
	return uuid.Nil, q, err
}

// runner returns a runner without handlers over the repository, for its
// admin operations.
func (e *env) runner() (*jobs.Runner, error) {
	return jobs.NewRunner(e.repo)
}

func runRetry(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var f adminFlags
	f.add(fs, "jobs per batch, 1 to 1000 (default 50)")
	fs.BoolVar(&f.failed, "failed", false, "every failed job (with the other filters)")
	return e.admin(ctx, fs, args, &f, "retried", func(r *jobs.Runner, id uuid.UUID) error {
		_, err := r.Retry(ctx, id)
		return err
	}, func(r *jobs.Runner, q jobs.ListQuery) (int, error) { return r.RetryMany(ctx, q) })
}

func runCancel(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var f adminFlags
	f.add(fs, "jobs per batch, 1 to 1000 (default 50)")
	return e.admin(ctx, fs, args, &f, "canceled", func(r *jobs.Runner, id uuid.UUID) error {
		_, err := r.Cancel(ctx, id)
		return err
	}, func(r *jobs.Runner, q jobs.ListQuery) (int, error) { return r.CancelMany(ctx, q) })
}

func runDelete(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var f adminFlags
	f.add(fs, "jobs per batch, 1 to 1000 (default 50)")
	fs.BoolVar(&f.all, "all", false, "every finished job")
	return e.admin(ctx, fs, args, &f, "deleted", func(r *jobs.Runner, id uuid.UUID) error { return r.Delete(ctx, id) }, func(r *jobs.Runner, q jobs.ListQuery) (int, error) { return r.DeleteMany(ctx, q) })
}

// admin runs an admin command on one job (one) or on the jobs of a filter
// (many), and prints what it did.
func (e *env) admin(ctx context.Context, fs *flag.FlagSet, args []string, f *adminFlags, done string,
	one func(*jobs.Runner, uuid.UUID) error, many func(*jobs.Runner, jobs.ListQuery) (int, error)) error {
	id, q, err := e.target(fs, args, f)
	if err != nil {
		return err
	}
	if err := e.open(ctx); err != nil {
		return err
	}
	r, err := e.runner()
	if err != nil {
		return err
	}
	if id != uuid.Nil {
		if err := one(r, id); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s %s\n", done, id)
		return nil
	}
	n, err := many(r, q)
	fmt.Fprintf(e.stdout, "%s %d job(s)\n", done, n)
	return err
}

func runPrune(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	older := fs.String("older-than", "", "age of the finished jobs to delete: a duration (36h) or days (7d); required")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *older == "" {
		return usagef("--older-than is required")
	}
	d, err := parseAge(*older)
	if err != nil {
		return usagef("--older-than %q is not an age such as 7d or 36h", *older)
	}
	if err := e.open(ctx); err != nil {
		return err
	}
	n, err := e.repo.Prune(ctx, time.Now().Add(-d))
	fmt.Fprintf(e.stdout, "pruned %d job(s)\n", n)
	return err
}
