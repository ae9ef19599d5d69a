package jobsbun

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"
)

// Dependencies (schema_deps.go). Create inserts the jobs of a call as
// usual, then links each new job that has dependencies, in the order of
// the call, in the same transaction (link): it marks its dependencies as
// having dependents, reading their status in the same statement, which
// on PostgreSQL locks them, so that a dependency that ends at the same
// moment either ends after the mark (and its trigger sees the new job's
// edges) or before (and the new job sees it ended). The job then stays
// pending (every dependency ended, and none that cancels it), is canceled
// (one failed or was canceled), or waits, with one row in jobs_deps per
// dependency that has not ended.

// linked is what link decided for one job: its stored fields afterwards.
type linked struct {
	status    jobs.Status
	dependsOn []uuid.UUID
	err       string
}

// link links the new jobs of js that have dependencies (deps, from
// rules.Deps; dups are the jobs of js that were duplicates, by index) at
// time t, and returns what it decided by index.
func (r *Repository) link(ctx context.Context, db bun.IDB, js []*jobs.Job, deps [][]rules.Dep, dups map[int]*jobs.Job, t time.Time) (map[int]linked, error) {
	t = t.UTC().Truncate(time.Microsecond)
	out := make(map[int]linked)
	idOf := func(k int) uuid.UUID {
		if d := dups[k]; d != nil {
			return d.ID
		}
		return js[k].ID
	}
	for i, ds := range deps {
		if len(ds) == 0 || dups[i] != nil {
			continue
		}
		ids := make([]uuid.UUID, 0, len(ds))
		for _, d := range ds {
			id := d.ID
			if d.Index >= 0 {
				id = idOf(d.Index)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		status, err := r.markDependents(ctx, db, ids)
		if err != nil {
			return nil, err
		}
		l := linked{status: jobs.StatusPending, dependsOn: ids}
		var open []uuid.UUID
		for _, id := range ids {
			st, ok := status[id]
			switch {
			case !ok:
				return nil, invalid("create", "job %d depends on job %s, which does not exist", i, id)
			case st == jobs.StatusWaiting || st == jobs.StatusPending || st == jobs.StatusRunning:
				open = append(open, id)
			case st != jobs.StatusSucceeded && !js[i].RunAnyway && l.status == jobs.StatusPending:
				l.status, l.err = jobs.StatusCanceled, "dependency "+id.String()+" "+string(st)
			}
		}
		if l.status == jobs.StatusPending && len(open) > 0 {
			l.status = jobs.StatusWaiting
		}
		if err := r.writeLink(ctx, db, js[i], l, open, t); err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// markDependents sets has_dependents on the jobs ids and returns their
// statuses; an ID that no job has is absent.
func (r *Repository) markDependents(ctx context.Context, db bun.IDB, ids []uuid.UUID) (map[uuid.UUID]jobs.Status, error) {
	out := make(map[uuid.UUID]jobs.Status, len(ids))
	const chunk = 1000
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		strs := make([]string, len(part))
		for k, id := range part {
			strs[k] = id.String()
		}
		rows, err := db.QueryContext(ctx, "UPDATE jobs SET has_dependents = TRUE WHERE id IN (?) RETURNING id, status", bun.List(strs))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uuid.UUID
			var st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = jobs.Status(st)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeLink stores what link decided for the new job j: its dependencies,
// and, when it waits, its status, the number of dependencies open and
// their rows in jobs_deps; when it is canceled, its status, end and error.
func (r *Repository) writeLink(ctx context.Context, db bun.IDB, j *jobs.Job, l linked, open []uuid.UUID, t time.Time) error {
	dependsOn, err := json.Marshal(l.dependsOn)
	if err != nil {
		return err
	}
	var query string
	args := []any{string(dependsOn), j.RunAnyway}
	switch l.status {
	case jobs.StatusWaiting:
		query = "UPDATE jobs SET depends_on = ?, run_anyway = ?, status = 'waiting', deps_left = ?, fair_rank = -1 WHERE id = ?"
		args = append(args, len(open))
	case jobs.StatusCanceled:
		query = "UPDATE jobs SET depends_on = ?, run_anyway = ?, status = 'canceled', error = ?, finished_at = ?" + r.d.castTime() + " WHERE id = ?"
		args = append(args, l.err, t)
	default:
		query = "UPDATE jobs SET depends_on = ?, run_anyway = ? WHERE id = ?"
	}
	if _, err := db.ExecContext(ctx, query, append(args, j.ID.String())...); err != nil {
		return err
	}
	const chunk = 500
	for lo := 0; lo < len(open); lo += chunk {
		part := open[lo:min(lo+chunk, len(open))]
		q := "INSERT INTO jobs_deps (parent_id, job_id) VALUES "
		vals := make([]any, 0, 2*len(part))
		for k, id := range part {
			if k > 0 {
				q += ", "
			}
			q += "(?" + r.d.castUUID() + ", ?" + r.d.castUUID() + ")"
			vals = append(vals, id.String(), j.ID.String())
		}
		if _, err := db.ExecContext(ctx, q, vals...); err != nil {
			return err
		}
	}
	return nil
}

// depsOf lists the dependencies of a job for rules.Deps.
func depsOf(j *jobs.Job) ([]uuid.UUID, []*jobs.Job) { return j.DependsOn, j.After }

// jobID is a job's ID for rules.Deps.
func jobID(j *jobs.Job) uuid.UUID { return j.ID }

// applyLinks sets the fields that link decided on the jobs of a Create
// that succeeded, and clears After on all of them.
func applyLinks(js []*jobs.Job, links map[int]linked, t time.Time) {
	t = t.UTC().Truncate(time.Microsecond)
	for i, j := range js {
		j.After = nil
		l, ok := links[i]
		if !ok {
			continue
		}
		j.Status, j.DependsOn = l.status, l.dependsOn
		if l.status == jobs.StatusCanceled {
			j.Error, j.FinishedAt = l.err, t
		}
	}
}
