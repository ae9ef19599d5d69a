package jobsbun

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
)

// This file holds the schedules of [Repository] (schema_schedules.go).

// Tick implements [jobs.JobRepository.Tick]. It first reads the stored
// state of the named schedules: a tick already stored with the same
// state (another process got there first, the common case when several
// declare a schedule) needs no write, since last ticks only move forward;
// when every tick is such, Tick returns after that one read. The others
// are written in one transaction: per schedule an upsert and a guarded
// UPDATE of its last tick, then the jobs of the ticks that moved it, in
// one INSERT.
func (r *Repository) Tick(ctx context.Context, ticks ...jobs.ScheduleTick) ([]bool, error) {
	const op = "tick"
	if r.closed.Load() {
		return nil, newError(jobs.ErrClosed, op, uuid.Nil, "repository is closed")
	}
	t := rules.Now()
	prepared := make([]*jobs.Job, len(ticks))
	names := make([]string, len(ticks))
	for i, tk := range ticks {
		if err := tk.Validate(); err != nil {
			return nil, err
		}
		if slices.Contains(names[:i], tk.Name) {
			return nil, invalid(op, "schedule %q is twice in one call", tk.Name)
		}
		names[i] = tk.Name
		if tk.Job != nil {
			c := *tk.Job
			if err := c.Prepare(t, r.maxPayload); err != nil {
				return nil, err
			}
			c.RunAt = c.RunAt.Truncate(time.Microsecond)
			prepared[i] = &c
		}
	}
	created := make([]bool, len(ticks))
	if len(ticks) == 0 {
		return created, nil
	}
	stored, err := r.schedulesNamed(ctx, r.db, names)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	var todo []int // the ticks to write
	for i, tk := range ticks {
		s, ok := stored[tk.Name]
		if !ok || tk.Job == nil || tk.LastTick.After(s.LastTick) || s.Spec != tk.Spec || s.Kind != tk.Kind ||
			!s.NextTick.Equal(tk.NextTick.UTC().Truncate(time.Microsecond)) {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return created, nil
	}
	// Rows are written in name order: two calls that write the same
	// schedules lock their rows in the same order and never deadlock.
	slices.SortFunc(todo, func(a, b int) int { return strings.Compare(ticks[a].Name, ticks[b].Name) })
	dups := map[int]*jobs.Job{}
	err = r.write(ctx, op, true, func(ctx context.Context, db bun.IDB) error {
		clear(created)
		clear(dups)
		var fresh []*jobs.Job
		var at []int // the index in ticks of each of fresh
		for _, i := range todo {
			tk := ticks[i]
			if _, err := db.ExecContext(ctx, "INSERT INTO jobs_schedules (name, spec, kind, next_tick, updated_at) VALUES (?, ?, ?, ?, ?) "+
				"ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, kind = excluded.kind, next_tick = excluded.next_tick, updated_at = excluded.updated_at",
				tk.Name, tk.Spec, tk.Kind, micros(tk.NextTick), t); err != nil {
				return err
			}
			if prepared[i] == nil {
				continue
			}
			res, err := db.ExecContext(ctx, "UPDATE jobs_schedules SET last_tick = ? WHERE name = ? AND (last_tick IS NULL OR last_tick < ?)",
				micros(tk.LastTick), tk.Name, micros(tk.LastTick))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				fresh = append(fresh, prepared[i])
				at = append(at, i)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		chunks, anyKey := chunkJobs(fresh)
		held, err := r.insert(ctx, db, fresh, chunks, anyKey)
		if err != nil {
			return err
		}
		for k, i := range at {
			if h := held[k]; h != nil {
				dups[i] = h
			} else {
				created[i] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, tk := range ticks {
		switch {
		case dups[i] != nil:
			*tk.Job = *dups[i]
			tk.Job.Duplicate = true
		case created[i]:
			*tk.Job = *prepared[i]
		}
	}
	if slices.Contains(created, true) {
		r.commits.publish(jobs.Event{Ready: true})
	}
	return created, nil
}

// Schedules implements [jobs.JobRepository.Schedules].
func (r *Repository) Schedules(ctx context.Context) ([]jobs.ScheduleInfo, error) {
	const op = "schedules"
	if r.closed.Load() {
		return nil, newError(jobs.ErrClosed, op, uuid.Nil, "repository is closed")
	}
	rows, err := r.db.QueryContext(ctx, "SELECT name, spec, kind, last_tick, next_tick FROM jobs_schedules")
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	defer rows.Close()
	out := []jobs.ScheduleInfo{}
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	// By Go's string order, as on every backend, whatever the collation.
	slices.SortFunc(out, func(a, b jobs.ScheduleInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// schedulesNamed reads the stored state of the named schedules.
func (r *Repository) schedulesNamed(ctx context.Context, db bun.IDB, names []string) (map[string]jobs.ScheduleInfo, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, spec, kind, last_tick, next_tick FROM jobs_schedules WHERE name IN (?)", bun.In(names))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]jobs.ScheduleInfo, len(names))
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out[s.Name] = s
	}
	return out, rows.Err()
}

func scanSchedule(rows *sql.Rows) (jobs.ScheduleInfo, error) {
	var s jobs.ScheduleInfo
	var last, next sql.NullInt64
	if err := rows.Scan(&s.Name, &s.Spec, &s.Kind, &last, &next); err != nil {
		return s, err
	}
	s.LastTick, s.NextTick = fromMicros(last), fromMicros(next)
	return s, nil
}

// micros is t as microseconds since the Unix epoch, or NULL for the zero
// time.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}
