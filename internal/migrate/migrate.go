// Package migrate applies the versioned schema of the jobs library.
//
// It is deliberately small: an ordered list of steps per dialect, a
// jobs_schema_version table that records which steps ran, and one
// transaction per step that takes a cross-process lock first, re-reads the
// current version and applies the step only if it is still missing. bun's own
// migrate package is meant for applications and its table names would
// collide with the host application's migrations.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Table is the name of the table that records applied steps.
const Table = "jobs_schema_version"

// Step is one schema change: Version counts up from 1 without gaps, and
// Stmts run in order inside one transaction, then Func when it is set (for
// a change that must read the schema first).
type Step struct {
	Version int
	Name    string
	Stmts   []string
	Func    func(ctx context.Context, tx bun.Tx) error
}

// TxFunc runs fn in a write transaction that commits when fn returns nil and
// rolls back otherwise; it may retry fn when storage was busy.
type TxFunc func(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error

// ErrTooNew is returned when the database records a version newer than the
// last step known to this code (a newer library already migrated it).
var ErrTooNew = errors.New("database schema is newer than this version of the library")

// Run applies every step whose version the database does not have yet. lock
// is a statement that serialises concurrent migrators inside the step's
// transaction (an advisory lock, or a write that takes the database's write
// lock). Run is safe to call from several processes at once.
func Run(ctx context.Context, runTx TxFunc, lock string, steps []Step) error {
	for i, s := range steps {
		if s.Version != i+1 {
			return fmt.Errorf("migrate: step %d has version %d", i+1, s.Version)
		}
	}
	create := "CREATE TABLE IF NOT EXISTS " + Table +
		" (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at VARCHAR(40) NOT NULL)"
	if err := runTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, create)
		return err
	}); err != nil {
		return fmt.Errorf("migrate: create version table: %w", err)
	}
	for _, s := range steps {
		err := runTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, lock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			cur, err := current(ctx, tx)
			if err != nil {
				return err
			}
			if cur > len(steps) {
				return fmt.Errorf("%w: version %d, known %d", ErrTooNew, cur, len(steps))
			}
			if cur >= s.Version {
				return nil
			}
			for _, stmt := range s.Stmts {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("step %d %s: %w", s.Version, s.Name, err)
				}
			}
			if s.Func != nil {
				if err := s.Func(ctx, tx); err != nil {
					return fmt.Errorf("step %d %s: %w", s.Version, s.Name, err)
				}
			}
			_, err = tx.ExecContext(ctx, "INSERT INTO "+Table+" (version, name, applied_at) VALUES (?, ?, ?)",
				s.Version, s.Name, time.Now().UTC().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

// Current returns the highest applied version, 0 for a new database.
func Current(ctx context.Context, db bun.IDB) (int, error) {
	return current(ctx, db)
}

func current(ctx context.Context, db bun.IDB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+Table).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
