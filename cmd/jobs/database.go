package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/uptrace/bun"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/migrate"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// database is an open jobs database and a runner on it that runs no
// handler: the commands use the runner's calls (Watch, Cancel…), which
// wake the handlers of every process sharing the database.
type database struct {
	repo   *jobsbun.Repository
	runner *jobs.Runner
	// before and after are the schema versions found and left by Open.
	before, after int
}

// openDatabase opens target, an SQLite path (with an optional sqlite:
// prefix) or a postgres:// URL, and migrates its schema. A missing SQLite
// file is an error unless create is set, so that a mistyped path is not
// answered with an empty new database.
func openDatabase(ctx context.Context, target string, create bool) (*database, error) {
	var (
		db  *bun.DB
		err error
	)
	postgres := strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
	if postgres {
		db, err = jobspg.OpenDB(ctx, target)
	} else {
		path := strings.TrimPrefix(target, "sqlite:")
		if path == "" {
			return nil, usagef("--db is empty")
		}
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) && !create {
			return nil, fmt.Errorf("no database at %s (`jobs migrate --db %s` creates one)", clip(path), clip(path))
		}
		db, err = jobsqlite.OpenDB(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	d := &database{}
	d.before, _ = migrate.Current(ctx, db) // no version table: a new database
	if d.repo, err = jobsbun.New(ctx, db, jobsbun.WithCloseDB()); err != nil {
		db.Close()
		return nil, err
	}
	if d.after, err = migrate.Current(ctx, db); err != nil {
		d.close()
		return nil, err
	}
	var opts []jobs.Option
	if postgres {
		opts = append(opts, jobs.WithNotifier(jobspg.NewListener(db))) // Watch woken by NOTIFY
	}
	if d.runner, err = jobs.NewRunner(d.repo, opts...); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *database) close() { d.repo.Close() }
