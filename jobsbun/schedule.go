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

// Tick implements [jobs.JobRepository.Tick]. A call whose tick was already
// stored (another process got there first, the common case when several
// declare a schedule) is answered by one read, without a write
// transaction: last ticks only move forward, so what the read shows is
// final.
func (r *Repository) Tick(ctx context.Context, s jobs.ScheduleInfo, job *jobs.Job) (jobs.ScheduleInfo, bool, error) {
	const op = "tick"
	if r.closed.Load() {
		return jobs.ScheduleInfo{}, false, newError(jobs.ErrClosed, op, uuid.Nil, "repository is closed")
	}
	if err := s.Validate(); err != nil {
		return jobs.ScheduleInfo{}, false, err
	}
	var p *jobs.Job
	if job != nil {
		c := *job
		p = &c
		if err := p.Prepare(rules.Now(), r.maxPayload); err != nil {
			return jobs.ScheduleInfo{}, false, err
		}
		p.RunAt = p.RunAt.Truncate(time.Microsecond)
		if stored, ok, err := r.schedule(ctx, r.db, s.Name); err != nil {
			return jobs.ScheduleInfo{}, false, storageError(op, uuid.Nil, err)
		} else if ok && !s.LastTick.After(stored.LastTick) && stored.Spec == s.Spec &&
			stored.Kind == s.Kind && stored.NextTick.Equal(s.NextTick.UTC().Truncate(time.Microsecond)) {
			return stored, false, nil
		}
	}
	var (
		out     jobs.ScheduleInfo
		created bool
		dup     *jobs.Job
	)
	err := r.write(ctx, op, true, func(ctx context.Context, db bun.IDB) error {
		created, dup = false, nil
		t := rules.Now()
		if _, err := db.ExecContext(ctx, "INSERT INTO jobs_schedules (name, spec, kind, next_tick, updated_at) VALUES (?, ?, ?, ?, ?) "+
			"ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, kind = excluded.kind, next_tick = excluded.next_tick, updated_at = excluded.updated_at",
			s.Name, s.Spec, s.Kind, micros(s.NextTick), t); err != nil {
			return err
		}
		if p != nil {
			res, err := db.ExecContext(ctx, "UPDATE jobs_schedules SET last_tick = ? WHERE name = ? AND (last_tick IS NULL OR last_tick < ?)",
				micros(s.LastTick), s.Name, micros(s.LastTick))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				chunks, anyKey := chunkJobs([]*jobs.Job{p})
				dups, err := r.insert(ctx, db, []*jobs.Job{p}, chunks, anyKey)
				if err != nil {
					return err
				}
				dup, created = dups[0], dups[0] == nil
			}
		}
		var ok bool
		var err error
		out, ok, err = r.schedule(ctx, db, s.Name)
		if err == nil && !ok {
			err = sql.ErrNoRows
		}
		return err
	})
	if err != nil {
		return jobs.ScheduleInfo{}, false, err
	}
	switch {
	case dup != nil:
		*job = *dup
		job.Duplicate = true
	case created:
		*job = *p
		r.commits.publish(jobs.Event{Ready: true})
	}
	return out, created, nil
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

// schedule reads the stored state of the named schedule.
func (r *Repository) schedule(ctx context.Context, db bun.IDB, name string) (jobs.ScheduleInfo, bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, spec, kind, last_tick, next_tick FROM jobs_schedules WHERE name = ?", name)
	if err != nil {
		return jobs.ScheduleInfo{}, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return jobs.ScheduleInfo{}, false, rows.Err()
	}
	s, err := scanSchedule(rows)
	return s, err == nil, err
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
