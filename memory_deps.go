package jobs

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs/internal/rules"
)

// This file holds the dependencies of [MemoryRepository] (see
// [Job.DependsOn]): the status a job gets when it is created after others,
// and what its dependencies' ends do to a waiting job. Each waiting record
// counts the dependencies it still waits for, and each record that has
// waiting dependents lists them, so ending a job costs O(its dependents),
// and nothing for a job that has none.

// memDeps resolves the dependencies of the jobs of one Create call that
// will be inserted (those that are not Duplicates), after the duplicates
// were mapped to the jobs that hold their keys: prepared[k] is the job that
// Create returns for jobs[k]. It returns each new job's DependsOn (nil
// without dependencies), or an [ErrInvalidArgument] error naming a
// dependency by ID that is not stored. It changes nothing. The caller holds
// the mutex.
func (m *MemoryRepository) memDeps(prepared []*Job, deps [][]rules.Dep) ([][]uuid.UUID, error) {
	if deps == nil {
		return nil, nil
	}
	out := make([][]uuid.UUID, len(prepared))
	for i, p := range prepared {
		if p.Duplicate || len(deps[i]) == 0 {
			continue // a Duplicate is the stored job: its own dependencies are ignored
		}
		ids := make([]uuid.UUID, 0, len(deps[i]))
		seen := make(map[uuid.UUID]bool, len(deps[i]))
		for _, d := range deps[i] {
			id := d.ID
			var dep *Job
			if d.Index >= 0 {
				dep = prepared[d.Index] // the job created, or the one holding its key
				id = dep.ID
			} else if r := m.jobs[id]; r != nil {
				dep = &r.job
			} else {
				return nil, invalid("create", "job %d depends on job %s, which does not exist", i, id)
			}
			if dep.Batch && dep.Kind == BatchKind {
				return nil, invalid("create", "job %s is a batch without a callback (kind %s): nothing runs after it", id, BatchKind)
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		out[i] = ids
	}
	return out, nil
}

// depStart sets the status that a new job with dependencies starts in
// (rule 4 of [Job.DependsOn]) and returns how many of its dependencies have
// not ended. status reads the status of a dependency: stored, or given to
// an earlier job of the same call.
func depStart(j *Job, status func(uuid.UUID) Status, t time.Time) (left int) {
	for _, id := range j.DependsOn {
		st := status(id)
		if !st.Terminal() {
			left++
			continue
		}
		if st != StatusSucceeded && !j.RunAnyway {
			j.Status = StatusCanceled
			j.Error = depError(id, st)
			j.FinishedAt = t
			return 0
		}
	}
	if left > 0 {
		j.Status = StatusWaiting
	}
	return left
}

// depError is the Error of a job canceled because its dependency id ended
// in status st.
func depError(id uuid.UUID, st Status) string {
	return fmt.Sprintf("dependency %s %s", id, st)
}

// wait registers a new waiting record with the dependencies it waits for.
// The caller holds the mutex.
func (m *MemoryRepository) wait(r *memRecord, left int) {
	r.left = left
	for _, id := range r.job.DependsOn {
		if p := m.jobs[id]; !p.job.Status.Terminal() {
			p.dependents = append(p.dependents, r)
		}
	}
}

// end makes a record that is not running any more, nor pending (settle and
// cancel took it out of their indexes), terminal with status st at t, and
// resolves its waiting dependents: each counts it as ended, and becomes
// pending when it was the last one it waited for; or, when it did not
// succeed and the dependent does not run anyway, the dependent is canceled
// at once, which ends it in turn, down through its own dependents. A batch
// also counts it in its fraction, and one without a callback ends instead
// of becoming pending, which ends it in turn (memory_batch.go). Every path
// that ends a job goes through end. The caller holds the mutex.
func (m *MemoryRepository) end(r *memRecord, st Status, t time.Time) {
	r.job.Status = st
	r.job.FinishedAt, r.job.UpdatedAt = t, t
	if r.dependents == nil {
		return
	}
	var ready []*memRecord
	ended := []*memRecord{r}
	for len(ended) > 0 {
		p := ended[len(ended)-1]
		ended = ended[:len(ended)-1]
		for _, d := range p.dependents {
			if d.job.Status != StatusWaiting {
				continue // canceled by a caller, or by another dependency
			}
			dj := &d.job
			if p.job.Status == StatusSucceeded || dj.RunAnyway {
				if dj.Batch && m.batchCounts(d, p, t) && dj.Kind == BatchKind {
					batchEnd(dj, d.notOK, t) // it has no callback to run
					d.left = 0
					ended = append(ended, d)
					continue
				}
				if d.left--; d.left == 0 {
					dj.Status, dj.UpdatedAt = StatusPending, t
					ready = append(ready, d)
				}
				continue
			}
			dj.Status = StatusCanceled
			dj.Error = depError(p.job.ID, p.job.Status)
			dj.FinishedAt, dj.UpdatedAt = t, t
			d.left = 0
			ended = append(ended, d)
		}
		p.dependents = nil
	}
	if len(ready) == 0 {
		return
	}
	// They take their turns as jobs created now (see JobRepository.Claim,
	// Fairness).
	js := make([]*Job, len(ready))
	for i, d := range ready {
		js[i] = &d.job
	}
	for i, rank := range m.ranks(js, t) {
		ready[i].rank = rank
		m.enqueue(ready[i], t)
	}
}

// jobDeps and jobID read a job's dependencies and ID for rules.Deps.
func jobDeps(j *Job) ([]uuid.UUID, []*Job) { return j.DependsOn, j.After }
func jobID(j *Job) uuid.UUID               { return j.ID }

// depStarts gives the new jobs of a Create call their dependencies and the
// status they start in, in call order, and returns how many dependencies
// each waiting one waits for. The caller holds the mutex.
func (m *MemoryRepository) depStarts(prepared []*Job, dependsOn [][]uuid.UUID, t time.Time) []int {
	left := make([]int, len(prepared))
	made := make(map[uuid.UUID]*Job, len(prepared)) // the new jobs so far
	status := func(id uuid.UUID) Status {
		if p := made[id]; p != nil {
			return p.Status
		}
		return m.jobs[id].job.Status
	}
	for i, p := range prepared {
		if p.Duplicate {
			continue
		}
		if p.DependsOn = dependsOn[i]; p.DependsOn != nil {
			left[i] = depStart(p, status, t)
			if p.Batch {
				batchStart(p, left[i], status, t)
			}
		}
		made[p.ID] = p
	}
	return left
}
