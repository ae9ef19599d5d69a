package jobsbun

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
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
	failed    int     // dependencies that ended without succeeding
	progress  float64 // a batch's: its jobs' together
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
		j := js[i]
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
		marked, err := r.markDependents(ctx, db, ids, j)
		if err != nil {
			return nil, err
		}
		l := linked{status: jobs.StatusPending, dependsOn: ids}
		var open []uuid.UUID
		var sum float64
		for _, id := range ids {
			m, ok := marked[id]
			switch {
			case !ok:
				return nil, invalid("create", "job %d depends on job %s, which does not exist", i, id)
			case j.Batch && m.batch != j.ID:
				return nil, invalid("create", "job %s already belongs to batch %s", id, m.batch)
			case m.endsItself:
				return nil, invalid("create", "job %s is a batch without a callback (kind %s): nothing runs after it", id, jobs.BatchKind)
			case m.status == jobs.StatusWaiting || m.status == jobs.StatusPending || m.status == jobs.StatusRunning:
				open = append(open, id)
				sum += m.fraction
				continue
			case m.status != jobs.StatusSucceeded:
				l.failed++
				if !j.RunAnyway && l.status == jobs.StatusPending {
					l.status, l.err = jobs.StatusCanceled, "dependency "+id.String()+" "+string(m.status)
				}
			}
			sum++
		}
		if j.Batch {
			l.progress = sum / float64(len(ids))
		}
		switch {
		case l.status == jobs.StatusCanceled:
		case len(open) > 0:
			l.status = jobs.StatusWaiting
		case j.Batch && j.Kind == jobs.BatchKind && l.failed > 0:
			l.status, l.err = jobs.StatusFailed, strconv.Itoa(l.failed)+" of "+strconv.Itoa(len(ids))+" jobs did not succeed"
		case j.Batch && j.Kind == jobs.BatchKind:
			l.status = jobs.StatusSucceeded
		}
		if err := r.writeLink(ctx, db, j, l, open, t); err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// marked is what markDependents read of a dependency.
type marked struct {
	status     jobs.Status
	fraction   float64
	batch      uuid.UUID // the batch it belongs to, or uuid.Nil
	endsItself bool      // a batch of kind jobs.BatchKind
}

// markDependents sets has_dependents on the jobs ids, and when j is a
// batch, makes them its jobs unless they belong to a batch already, and
// returns what it read of them; an ID that no job has is absent.
func (r *Repository) markDependents(ctx context.Context, db bun.IDB, ids []uuid.UUID, j *jobs.Job) (map[uuid.UUID]marked, error) {
	out := make(map[uuid.UUID]marked, len(ids))
	var batch any // NULL: no batch
	if j.Batch {
		batch = j.ID.String()
	}
	const chunk = 1000
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		strs := make([]string, len(part))
		for k, id := range part {
			strs[k] = id.String()
		}
		rows, err := db.QueryContext(ctx, "UPDATE jobs SET has_dependents = TRUE, batch_id = COALESCE(batch_id, ?"+r.d.castUUID()+") "+
			"WHERE id IN (?) RETURNING id, status, progress_fraction, batch_id, batch AND kind = ?", batch, bun.List(strs), jobs.BatchKind)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uuid.UUID
			var st string
			var m marked
			var b uuid.NullUUID
			if err := rows.Scan(&id, &st, &m.fraction, &b, &m.endsItself); err != nil {
				rows.Close()
				return nil, err
			}
			m.status, m.batch = jobs.Status(st), b.UUID
			out[id] = m
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
// their rows in jobs_deps; when it ended (canceled by a dependency, or a
// batch without a callback whose jobs have all ended), its status, end
// and error. A batch also gets its counts and progress.
func (r *Repository) writeLink(ctx context.Context, db bun.IDB, j *jobs.Job, l linked, open []uuid.UUID, t time.Time) error {
	dependsOn, err := json.Marshal(l.dependsOn)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO jobs_depends_on (job_id, ids) VALUES (?, ?)", j.ID.String(), string(dependsOn)); err != nil {
		return err
	}
	set := "run_anyway = ?, batch = ?, deps_total = ?, deps_failed = ?, deps_left = ?, status = ?"
	args := []any{j.RunAnyway, j.Batch, len(l.dependsOn), l.failed, len(open), string(l.status)}
	if j.Batch {
		set += ", progress_fraction = ?"
		args = append(args, l.progress)
	}
	if l.status == jobs.StatusWaiting {
		set += ", fair_rank = -1"
	}
	if l.status.Terminal() {
		set += ", error = ?, finished_at = ?" + r.d.castTime()
		args = append(args, l.err, t)
	}
	if _, err := db.ExecContext(ctx, "UPDATE jobs SET "+set+" WHERE id = ?", append(args, j.ID.String())...); err != nil {
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
		if j.Batch {
			j.Progress.Fraction = l.progress
		}
		if l.status.Terminal() {
			j.Error, j.FinishedAt = l.err, t
		}
	}
}

// depsToRead is the DependsOn that the scanner gives a job whose
// dependencies are in jobs_depends_on: withDeps replaces it. It is empty
// but not nil, and never leaves this package.
var depsToRead = make([]uuid.UUID, 0)

// withDeps reads the dependencies of the jobs of js that have some (the
// scanner marked them with depsToRead) from jobs_depends_on, in one
// query: most results have none, and cost nothing more. A job whose row
// there is missing or does not decode (damaged by other code) gets none.
func (r *Repository) withDeps(ctx context.Context, db bun.IDB, js []*jobs.Job) error {
	var ids []string
	for _, j := range js {
		if j.DependsOn != nil && len(j.DependsOn) == 0 {
			ids = append(ids, j.ID.String())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	byID := make(map[uuid.UUID][]uuid.UUID, len(ids))
	for lo := 0; lo < len(ids); lo += 1000 {
		rows, err := db.QueryContext(ctx, "SELECT job_id, ids FROM jobs_depends_on WHERE job_id IN (?)", bun.List(ids[lo:min(lo+1000, len(ids))]))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id uuid.UUID
			var raw string
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return err
			}
			var deps []uuid.UUID
			if json.Unmarshal([]byte(raw), &deps) == nil && len(deps) > 0 {
				byID[id] = deps
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	}
	for _, j := range js {
		if j.DependsOn != nil && len(j.DependsOn) == 0 {
			j.DependsOn = byID[j.ID]
		}
	}
	return nil
}
