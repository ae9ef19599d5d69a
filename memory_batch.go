package jobs

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// This file holds the batches of [MemoryRepository] (see [Job.Batch]): a
// batch is a waiting record whose dependencies are its jobs, and each of
// them points back at it through a memMember. The batch's fraction is kept
// incrementally: each job's member remembers the share it last added, and
// a change of the job's progress, or its end, adds the difference divided
// by the number of jobs, so an update costs O(1) (O(depth) for batches of
// batches) and a job in no batch pays one nil check.

// memMember is the place of a job in its batch.
type memMember struct {
	batch *memRecord
	share float64 // the job's part of the batch's fraction, times its job count
	ended bool    // its end is counted: what it does later is not the batch's
}

// batchMembers refuses, before anything is written, the batches of a
// Create call that take a job already in a batch, stored or earlier in the
// call. prepared and dependsOn are those of Create. The caller holds the
// mutex.
func (m *MemoryRepository) batchMembers(prepared []*Job, dependsOn [][]uuid.UUID) error {
	var taken map[uuid.UUID]int // jobs taken by a batch of this call: its index
	for i, p := range prepared {
		if p.Duplicate || !p.Batch {
			continue
		}
		if taken == nil {
			taken = map[uuid.UUID]int{}
		}
		for _, id := range dependsOn[i] {
			if r := m.jobs[id]; r != nil && r.member != nil {
				return invalid("create", "batch %d takes job %s, which belongs to batch %s", i, id, r.member.batch.job.ID)
			}
			if k, ok := taken[id]; ok {
				return invalid("create", "batch %d takes job %s, which belongs to batch %d of the call", i, id, k)
			}
			taken[id] = i
		}
	}
	return nil
}

// batchStart ends at its creation a batch without a callback whose jobs
// have all ended (left is 0): it is never claimed. status reads the status
// of a job as depStarts does.
func batchStart(j *Job, left int, status func(uuid.UUID) Status, t time.Time) {
	if left > 0 || j.Kind != BatchKind {
		return
	}
	notOK := 0
	for _, id := range j.DependsOn {
		if status(id) != StatusSucceeded {
			notOK++
		}
	}
	batchEnd(j, notOK, t)
}

// batchEnd makes a batch without a callback whose jobs have all ended,
// notOK of them not succeeded, succeeded or failed at t. It does not
// resolve its dependents (see end).
func batchEnd(j *Job, notOK int, t time.Time) {
	j.Status = StatusSucceeded
	if notOK > 0 {
		j.Status = StatusFailed
		j.Error = fmt.Sprintf("%d of %d jobs did not succeed", notOK, len(j.DependsOn))
	}
	j.Progress.Fraction = 1
	j.FinishedAt, j.UpdatedAt = t, t
}

// join makes the jobs of a new batch, r, its members, and gives it the
// fraction of their current states; p is the job Create returns for it.
// Its jobs are stored. The caller holds the mutex.
func (m *MemoryRepository) join(r *memRecord, p *Job) {
	sum := 0.0
	for _, id := range r.job.DependsOn {
		d := m.jobs[id]
		ended := d.job.Status.Terminal()
		share := 1.0
		if !ended {
			share = d.job.Progress.Fraction
		} else if d.job.Status != StatusSucceeded {
			r.notOK++
		}
		sum += share
		d.member = &memMember{batch: r, share: share, ended: ended}
	}
	f := 1.0 // every job has ended
	if r.job.Status == StatusWaiting {
		f = clampFraction(sum / float64(len(r.job.DependsOn)))
	}
	r.job.Progress.Fraction, p.Progress.Fraction = f, f
}

// clampFraction keeps f, which rounding may push out, in [0, 1].
func clampFraction(f float64) float64 { return min(max(f, 0), 1) }

// progressed records that r's share of its waiting batch is now c (its
// fraction), and passes the batch's new fraction on to the batch that
// holds it, if any. The caller holds the mutex.
func (m *MemoryRepository) progressed(r *memRecord, c float64, t time.Time) {
	for mb := r.member; mb != nil && !mb.ended && mb.share != c; mb = mb.batch.member {
		b := &mb.batch.job
		if b.Status != StatusWaiting {
			return
		}
		b.Progress.Fraction = clampFraction(b.Progress.Fraction + (c-mb.share)/float64(len(b.DependsOn)))
		b.UpdatedAt = t
		mb.share = c
		c = b.Progress.Fraction
	}
}

// batchCounts counts the end of job p, in status p.job.Status, in its
// waiting batch b (which end calls for every ended job that b waits for),
// and reports whether it was the last of b's jobs. The caller holds the
// mutex.
func (m *MemoryRepository) batchCounts(b, p *memRecord, t time.Time) (last bool) {
	m.progressed(p, 1, t)
	p.member.ended = true
	if p.job.Status != StatusSucceeded {
		b.notOK++
	}
	if b.left > 1 {
		return false
	}
	// Exactly 1, whatever the rounding of the shares added.
	b.job.Progress.Fraction = 1
	m.progressed(b, 1, t)
	return true
}

// cancelJobs cancels the jobs of batch r that have not ended, as
// RequestCancel of each does, once r is canceled (so their ends do not
// count in it). The caller holds the mutex.
func (m *MemoryRepository) cancelJobs(r *memRecord, t time.Time) {
	for _, id := range r.job.DependsOn {
		if d := m.jobs[id]; d != nil && d.member != nil && d.member.batch == r {
			m.cancel(d, t)
		}
	}
}

// retryBatch retries the failed or canceled batch r (see
// [JobRepository.Retry]): its jobs that did not succeed are retried, a
// batch among them as r is, and r waits for them again; without any, r is
// retried as any job. It changes nothing when it returns an error. The
// caller holds the mutex.
func (m *MemoryRepository) retryBatch(r *memRecord, t time.Time) error {
	again, err := m.batchRetries(r)
	if err != nil {
		return err
	}
	if len(again) == 0 {
		m.retry(r, t)
		return nil
	}
	j := &r.job
	n := len(again)
	sum := float64(len(j.DependsOn) - n) // the jobs that succeeded (or were deleted)
	for _, d := range again {
		if d.job.Batch {
			_ = m.retryBatch(d, t) // checked by batchRetries
		} else {
			m.retry(d, t)
		}
		d.member.share, d.member.ended = d.job.Progress.Fraction, false
		d.dependents = append(d.dependents, r)
		sum += d.member.share
	}
	j.Status, j.Attempt = StatusWaiting, 0
	j.RunAt, j.UpdatedAt = t, t
	j.Result, j.Checkpoint, j.OutputSeq = nil, nil, 0
	j.Progress = Progress{Fraction: clampFraction(sum / float64(len(j.DependsOn)))}
	j.CancelRequested = false
	j.StartedAt, j.FinishedAt = time.Time{}, time.Time{}
	r.output = nil
	r.left = n
	r.notOK -= n
	return nil
}

// batchRetries returns the jobs of the failed or canceled batch r that
// did not succeed, or the [ErrConflict] that refuses its retry: one of its
// jobs has not ended (its end would count twice), or r has no callback and
// every job of r (and of the batches among them) succeeded, so that
// nothing would run. The caller holds the mutex.
func (m *MemoryRepository) batchRetries(r *memRecord) ([]*memRecord, error) {
	var again []*memRecord
	for _, id := range r.job.DependsOn {
		d := m.jobs[id]
		if d == nil || d.member == nil || d.member.batch != r {
			continue // deleted
		}
		switch st := d.job.Status; {
		case !st.Terminal():
			return nil, newError(ErrConflict, "retry", r.job.ID, "job %s of the batch is %s; a batch is retried once its jobs have ended", id, st)
		case st == StatusSucceeded:
			continue
		case d.job.Batch:
			if _, err := m.batchRetries(d); err != nil {
				return nil, err
			}
		}
		again = append(again, d)
	}
	if len(again) == 0 && r.job.Kind == BatchKind {
		return nil, newError(ErrConflict, "retry", r.job.ID, "every job of the batch succeeded: nothing to retry")
	}
	return again, nil
}
