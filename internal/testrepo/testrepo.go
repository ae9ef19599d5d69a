// Package testrepo opens SQL repositories for tests, each on a fresh
// database from package testdb, closed when the test ends.
package testrepo

import (
	"context"
	"testing"
	"time"

	"github.com/jobsmith/jobs/internal/testdb"
	"github.com/jobsmith/jobs/jobsbun"
	"github.com/jobsmith/jobs/jobspg"
	"github.com/jobsmith/jobs/jobsqlite"
)

// SQLite opens a repository on a new SQLite file.
func SQLite(t testing.TB, opts ...jobsqlite.Option) *jobsbun.Repository {
	t.Helper()
	repo, err := jobsqlite.Open(context.Background(), testdb.SQLitePath(t), opts...)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := repo.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return repo
}

// Postgres opens a repository on a new PostgreSQL schema; it skips the test
// when no server is configured (see testdb.PostgresEnv).
func Postgres(t testing.TB, opts ...jobspg.Option) *jobsbun.Repository {
	t.Helper()
	repo, err := jobspg.Open(context.Background(), testdb.PostgresDSN(t), append(opts, jobspg.WithMaxOpenConns(8))...)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := repo.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return repo
}

// LockWrites takes the database's write lock on a connection of its own, as
// a backup or a long migration would (SQLite: BEGIN IMMEDIATE; PostgreSQL:
// LOCK TABLE), and returns a func that releases it and says when.
func LockWrites(t testing.TB, repo *jobsbun.Repository) (release func() time.Time) {
	t.Helper()
	conn, err := repo.DB().Conn(t.Context())
	if err != nil {
		t.Fatalf("conn: %v", err)
	}
	tx, err := conn.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE on SQLite
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if repo.DB().Dialect().Name().String() == "pg" {
		_, err = tx.ExecContext(t.Context(), "LOCK TABLE jobs IN EXCLUSIVE MODE")
	} else {
		_, err = tx.ExecContext(t.Context(), "UPDATE jobs SET updated_at = updated_at WHERE 0")
	}
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	return func() time.Time {
		at := time.Now()
		if err := tx.Rollback(); err != nil {
			t.Errorf("rollback: %v", err)
		}
		if err := conn.Close(); err != nil {
			t.Errorf("close conn: %v", err)
		}
		return at
	}
}
