package jobs

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// This file holds the admin operations of [MemoryRepository]: retry,
// cancel and delete, of one job or of a batch that matches a filter.

// Retry implements [JobRepository.Retry].
func (m *MemoryRepository) Retry(ctx context.Context, id uuid.UUID) (*Job, error) {
	const op = "retry"
	r, err := m.lockJob(ctx, op, id)
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if !retryable(r.job.Status) {
		return nil, newError(ErrConflict, op, id, "job is %s; only failed or canceled jobs can be retried", r.job.Status)
	}
	t := rules.Now()
	if r.job.Batch {
		if err := m.retryBatch(r, t); err != nil {
			return nil, err
		}
	} else {
		m.retry(r, t)
	}
	return cloneJob(&r.job), nil
}

// RetryMany implements [JobRepository.RetryMany].
func (m *MemoryRepository) RetryMany(ctx context.Context, q ListQuery) ([]uuid.UUID, error) {
	// A batch is retried by Retry, with its jobs (see JobRepository.RetryMany).
	return m.batch(ctx, "retry many", q, func(j *Job) bool { return retryable(j.Status) && !j.Batch }, func(rs []*memRecord, t time.Time) {
		for _, r := range rs {
			m.retry(r, t)
		}
	})
}

// CancelMany implements [JobRepository.CancelMany].
func (m *MemoryRepository) CancelMany(ctx context.Context, q ListQuery) ([]uuid.UUID, error) {
	return m.batch(ctx, "cancel many", q, func(j *Job) bool { return !j.Status.Terminal() }, func(rs []*memRecord, t time.Time) {
		for _, r := range rs {
			m.cancel(r, t)
		}
	})
}

// Delete implements [JobRepository.Delete].
func (m *MemoryRepository) Delete(ctx context.Context, id uuid.UUID) error {
	const op = "delete"
	r, err := m.lockJob(ctx, op, id)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	if !r.job.Status.Terminal() {
		return newError(ErrConflict, op, id, "job is %s; only finished jobs can be deleted", r.job.Status)
	}
	m.forget(r)
	m.order = slices.DeleteFunc(m.order, func(o *memRecord) bool { return o == r })
	return nil
}

// DeleteMany implements [JobRepository.DeleteMany].
func (m *MemoryRepository) DeleteMany(ctx context.Context, q ListQuery) ([]uuid.UUID, error) {
	return m.batch(ctx, "delete many", q, func(j *Job) bool { return j.Status.Terminal() }, func(rs []*memRecord, _ time.Time) {
		if len(rs) == 0 {
			return
		}
		deleted := make(map[*memRecord]bool, len(rs))
		for _, r := range rs {
			m.forget(r)
			deleted[r] = true
		}
		m.order = slices.DeleteFunc(m.order, func(r *memRecord) bool { return deleted[r] })
	})
}

// lockJob takes the mutex (as lock does) and returns the record of job id,
// or an [ErrNotFound] error without the mutex. On a nil error the caller
// must unlock.
func (m *MemoryRepository) lockJob(ctx context.Context, op string, id uuid.UUID) (*memRecord, error) {
	if err := m.lock(ctx, op); err != nil {
		return nil, err
	}
	r := m.jobs[id]
	if r == nil {
		m.mu.Unlock()
		return nil, notFound(op, id)
	}
	return r, nil
}

// retryable reports whether a job in status s may be retried.
func retryable(s Status) bool { return s == StatusFailed || s == StatusCanceled }

// batch applies do, under the mutex, to up to q's limit of the jobs that
// match q and that pass ok (running jobs with a cancel request
// never do), newest first, below q's cursor, and returns their IDs.
func (m *MemoryRepository) batch(ctx context.Context, op string, q ListQuery, ok func(*Job) bool, do func(rs []*memRecord, t time.Time)) ([]uuid.UUID, error) {
	limit, after, err := batchQuery(op, q)
	if err != nil {
		return nil, err
	}
	if err := m.lock(ctx, op); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	end := len(m.order)
	if after != uuid.Nil {
		end, _ = slices.BinarySearchFunc(m.order, after, func(r *memRecord, id uuid.UUID) int {
			return bytes.Compare(r.job.ID[:], id[:])
		})
	}
	t := rules.Now()
	ids := []uuid.UUID{}
	var picked []*memRecord
	for i := end - 1; i >= 0 && len(picked) < limit; i-- {
		r := m.order[i]
		if ok(&r.job) && listMatches(q, &r.job) && (r.job.Status != StatusRunning || !r.job.CancelRequested) {
			picked = append(picked, r)
		}
	}
	for _, r := range picked {
		ids = append(ids, r.job.ID)
	}
	do(picked, t)
	return ids, nil
}

// retry makes a failed or canceled record pending again, as a new job. The
// caller holds the mutex.
func (m *MemoryRepository) retry(r *memRecord, t time.Time) {
	j := &r.job
	j.Status = StatusPending
	j.Attempt = 0
	j.RunAt, j.UpdatedAt = t, t
	j.Result, j.Progress, j.Checkpoint, j.OutputSeq = nil, Progress{}, nil, 0
	j.CancelRequested = false
	j.StartedAt, j.FinishedAt = time.Time{}, time.Time{}
	r.output = nil
	// A new place in line, after the pending jobs of its key, as a new
	// job gets (see JobRepository.Claim, Fairness).
	r.rank = m.ranks([]*Job{j}, t)[0]
	m.enqueue(r, t)
}

// forget removes a finished record from every index but the order (which
// the caller updates). The caller holds the mutex.
func (m *MemoryRepository) forget(r *memRecord) {
	delete(m.jobs, r.job.ID)
	if k := r.job.UniqueKey; k != "" && m.unique[k] == r {
		delete(m.unique, k)
	}
}

// batchQuery validates the filter of a batch admin operation as List
// does, naming op in its error.
func batchQuery(op string, q ListQuery) (limit int, after uuid.UUID, err error) {
	limit, after, err = q.Page()
	if e, ok := err.(*Error); ok {
		c := *e
		c.Op = op
		return 0, uuid.Nil, &c
	}
	return limit, after, err
}
