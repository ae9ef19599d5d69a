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
		moved, err := r.storeTicks(ctx, db, ticks, todo, prepared, t)
		if err != nil {
			return err
		}
		for _, i := range todo {
			if moved[ticks[i].Name] {
				fresh = append(fresh, prepared[i])
				at = append(at, i)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		chunks, anyKey, _ := chunkJobs(fresh)
		rk, err := r.ranks(ctx, db, fresh, t, r.d.pg)
		if err != nil {
			return err
		}
		held, err := r.insert(ctx, db, fresh, chunks, anyKey, rk)
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

// storeTicks writes the rows of ticks[todo] with one upsert, then moves
// the last tick of those with a job forward with one guarded UPDATE, and
// returns the names of the schedules it moved: two statements whatever the
// number of schedules, since a round trip per schedule made 200 schedules
// a second fall behind on a loaded PostgreSQL. The upsert locks the rows
// in the order of todo (by name), and the UPDATE touches only rows this
// transaction already holds.
func (r *Repository) storeTicks(ctx context.Context, db bun.IDB, ticks []jobs.ScheduleTick, todo []int, prepared []*jobs.Job, t time.Time) (map[string]bool, error) {
	var q strings.Builder
	args := make([]any, 0, 5*len(todo))
	q.WriteString("INSERT INTO jobs_schedules (name, spec, kind, next_tick, updated_at) VALUES ")
	for k, i := range todo {
		if k > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?)")
		tk := ticks[i]
		args = append(args, tk.Name, tk.Spec, tk.Kind, micros(tk.NextTick), t)
	}
	q.WriteString(" ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, kind = excluded.kind, " +
		"next_tick = excluded.next_tick, updated_at = excluded.updated_at")
	if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
		return nil, err
	}
	q.Reset()
	args = args[:0]
	for _, i := range todo {
		if prepared[i] == nil || ticks[i].LastTick.IsZero() {
			continue
		}
		if len(args) > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, CAST(? AS BIGINT))")
		args = append(args, ticks[i].Name, ticks[i].LastTick.UnixMicro())
	}
	moved := map[string]bool{}
	if len(args) == 0 {
		return moved, nil
	}
	// VALUES names its columns column1, column2… on both backends.
	rows, err := db.QueryContext(ctx, "UPDATE jobs_schedules SET last_tick = v.column2 FROM (VALUES "+q.String()+") AS v "+
		"WHERE jobs_schedules.name = v.column1 AND (jobs_schedules.last_tick IS NULL OR jobs_schedules.last_tick < v.column2) "+
		"RETURNING jobs_schedules.name", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		moved[name] = true
	}
	return moved, rows.Err()
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
