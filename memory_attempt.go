package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// This file holds the worker side of [MemoryRepository]: claims and the
// lease-fenced writes.

// Claim implements [JobRepository.Claim].
func (m *MemoryRepository) Claim(ctx context.Context, q ClaimQuery) ([]*Job, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := m.lock(ctx, "claim"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	t := rules.Now()
	ad := m.admitter(q, t)
	var closed []admit.Scope // limited scopes that admit nothing now
	if ad != nil {
		closed = ad.Closed()
	}
	var eligible []*memBucket
	for key, b := range m.buckets {
		if (len(q.Queues) == 0 || slices.Contains(q.Queues, key.queue)) &&
			(len(q.Kinds) == 0 || slices.Contains(q.Kinds, key.kind)) && !m.paused[key.queue] &&
			!slices.Contains(closed, admit.Scope{Type: admit.KindScope, Name: key.kind}) &&
			!slices.Contains(closed, admit.Scope{Type: admit.QueueScope, Name: key.queue}) {
			b.promote(t, m.dueRank)
			eligible = append(eligible, b)
		}
	}
	fits := newMemFits(ad, eligible)
	out := []*Job{}
	var held []*memRecord // ready jobs the limits skipped, put back below
	for len(out) < q.Limit {
		var best *memBucket
		for _, b := range eligible {
			if r := b.peek(); r != nil && fits.any(b) && (best == nil || claimsBefore(r, best.peek())) {
				best = b
			}
		}
		if best == nil {
			break
		}
		r := best.popReady()
		j := &r.job
		m.pendingKey(r, -1)
		if ad != nil {
			if !fits.popped(best, j.ConcurrencyKey) || !ad.Admit(j.Kind, j.Queue, j.ConcurrencyKey) {
				fits.refused(best, j.ConcurrencyKey)
				m.pendingKey(r, 1)
				r.bucket = best
				held = append(held, r)
				continue
			}
			m.logStart(ad, j, t)
		}
		j.Status = StatusRunning
		j.Attempt++
		j.LeaseOwner = q.Owner
		j.LeaseToken = uuid.NewString()
		j.LeaseExpiresAt = t.Add(q.LeaseDuration)
		j.StartedAt, j.UpdatedAt = t, t
		m.running[j.ID] = r
		out = append(out, cloneJob(j))
	}
	for _, r := range held {
		r.bucket.putReady(r)
	}
	for _, b := range eligible {
		if b.empty() {
			delete(m.buckets, b.key)
		}
	}
	if q.NextStart != nil {
		*q.NextStart = time.Time{}
		if ad != nil {
			*q.NextStart = ad.NextStart()
		}
	}
	return out, nil
}

// leased returns the running record held under lease l, or nil. The caller
// holds the mutex.
func (m *MemoryRepository) leased(l Lease) *memRecord {
	r := m.running[l.JobID]
	if r == nil || l.Token == "" || r.job.LeaseToken != l.Token {
		return nil
	}
	return r
}

// UpdateProgress implements [JobRepository.UpdateProgress].
func (m *MemoryRepository) UpdateProgress(ctx context.Context, lease time.Duration, updates ...ProgressUpdate) error {
	const op = "update progress"
	if err := checkLeaseDuration(op, lease); err != nil {
		return err
	}
	for _, u := range updates {
		if err := u.Validate(rules.MaxPayloadBytes); err != nil {
			return err
		}
	}
	if err := m.lock(ctx, op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	t := rules.Now()
	var errs []error
	for _, u := range updates {
		r := m.leased(u.Lease)
		if r == nil {
			errs = append(errs, leaseLost(op, u.Lease.JobID))
			continue
		}
		r.job.Progress = u.Progress
		if r.member != nil {
			m.progressed(r, u.Progress.Fraction, t)
		}
		if u.Checkpoint != nil {
			r.job.Checkpoint = bytes.Clone(u.Checkpoint)
			r.appendOutput(u.Output)
		}
		r.job.LeaseExpiresAt = t.Add(lease)
		r.job.UpdatedAt = t
	}
	return errors.Join(errs...)
}

// appendOutput stores items after the record's output.
func (r *memRecord) appendOutput(items []json.RawMessage) {
	for _, it := range items {
		r.output = append(r.output, bytes.Clone(it))
	}
	r.job.OutputSeq = int64(len(r.output))
}

// Heartbeat implements [JobRepository.Heartbeat].
func (m *MemoryRepository) Heartbeat(ctx context.Context, lease time.Duration, leases ...Lease) error {
	const op = "heartbeat"
	if err := checkLeaseDuration(op, lease); err != nil {
		return err
	}
	if err := m.lock(ctx, op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	t := rules.Now()
	var errs []error
	for _, l := range leases {
		r := m.leased(l)
		if r == nil {
			errs = append(errs, leaseLost(op, l.JobID))
			continue
		}
		r.job.LeaseExpiresAt = t.Add(lease)
		r.job.UpdatedAt = t
	}
	return errors.Join(errs...)
}

// Finish implements [JobRepository.Finish].
func (m *MemoryRepository) Finish(ctx context.Context, completions ...Completion) error {
	const op = "finish"
	for _, c := range completions {
		if err := c.Validate(rules.MaxPayloadBytes); err != nil {
			return err
		}
	}
	if err := m.lock(ctx, op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	t := rules.Now()
	var errs []error
	for _, c := range completions {
		r := m.leased(c.Lease)
		if r == nil {
			errs = append(errs, leaseLost(op, c.Lease.JobID))
			continue
		}
		j := &r.job
		if c.Error != "" {
			j.Error = rules.ErrorText(c.Error)
			j.Errors = appendAttemptError(j.Errors, j.Attempt, c.Error, t)
		}
		if c.Progress != nil {
			j.Progress = *c.Progress
		}
		// A cancel request wins over whatever the attempt reports.
		status := c.Status
		if j.CancelRequested && status != StatusCanceled {
			errs = append(errs, canceledInstead(op, j.ID, status))
			status = StatusCanceled
		}
		if status != StatusPending {
			r.appendOutput(c.Output)
		}
		switch status {
		case StatusPending:
			j.RunAt = t
			if !c.RunAt.IsZero() {
				j.RunAt = c.RunAt.UTC().Truncate(time.Microsecond)
			}
		case StatusSucceeded:
			j.Result = nil
			if !blankJSON(c.Result) {
				j.Result = slices.Clone(c.Result)
			}
			if c.Progress == nil {
				j.Progress.Fraction = 1
			}
		}
		m.settle(r, status, t)
		if r.member != nil && status == StatusPending {
			m.progressed(r, j.Progress.Fraction, t) // an end counts in end
		}
	}
	return errors.Join(errs...)
}

// settle moves a running record to status (pending or terminal), clearing
// its lease; a terminal status ends it (memory_deps.go). The caller holds
// the mutex.
func (m *MemoryRepository) settle(r *memRecord, status Status, t time.Time) {
	j := &r.job
	delete(m.running, j.ID)
	j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = "", "", time.Time{}
	if status != StatusPending {
		m.end(r, status, t)
		return
	}
	j.Status, j.UpdatedAt = status, t
	m.enqueue(r, t)
}

// Release implements [JobRepository.Release].
func (m *MemoryRepository) Release(ctx context.Context, leases ...Lease) error {
	const op = "release"
	if err := m.lock(ctx, op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	t := rules.Now()
	var errs []error
	for _, l := range leases {
		r := m.leased(l)
		if r == nil {
			errs = append(errs, leaseLost(op, l.JobID))
			continue
		}
		r.job.Attempt--
		st := releasedStatus(&r.job)
		if st == StatusCanceled {
			errs = append(errs, canceledInstead(op, l.JobID, StatusPending))
		}
		m.settle(r, st, t)
	}
	return errors.Join(errs...)
}

// releasedStatus is where a running job goes when its worker lets go of it.
func releasedStatus(j *Job) Status {
	if j.CancelRequested {
		return StatusCanceled
	}
	return StatusPending
}

// RequestCancel implements [JobRepository.RequestCancel].
func (m *MemoryRepository) RequestCancel(ctx context.Context, id uuid.UUID) (*Job, error) {
	const op = "request cancel"
	r, err := m.lockJob(ctx, op, id) // memory_admin.go
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if r.job.Status.Terminal() {
		return nil, newError(ErrConflict, op, id, "job is already %s", r.job.Status)
	}
	m.cancel(r, rules.Now())
	return cloneJob(&r.job), nil
}

// cancel cancels a pending or waiting record at once and requests the
// cancel of a running one. A waiting batch cancels its jobs that have not
// ended in turn. The caller holds the mutex.
func (m *MemoryRepository) cancel(r *memRecord, t time.Time) {
	j := &r.job
	switch j.Status {
	case StatusPending, StatusWaiting:
		waiting := j.Status == StatusWaiting
		m.dequeue(r) // a waiting record is in no index
		j.CancelRequested = true
		m.end(r, StatusCanceled, t)
		if waiting && j.Batch {
			m.cancelJobs(r, t)
		}
	case StatusRunning:
		if !j.CancelRequested {
			j.CancelRequested = true
			j.UpdatedAt = t
		}
	}
}

// CancelRequests implements [JobRepository.CancelRequests].
func (m *MemoryRepository) CancelRequests(ctx context.Context, owner string) ([]uuid.UUID, error) {
	const op = "cancel requests"
	if err := checkName(op, "owner", owner, false); err != nil {
		return nil, err
	}
	if err := m.lock(ctx, op); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ids := []uuid.UUID{}
	for id, r := range m.running {
		if r.job.CancelRequested && r.job.LeaseOwner == owner {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// RescueExpired implements [JobRepository.RescueExpired]. The leases that
// expired first are rescued first.
func (m *MemoryRepository) RescueExpired(ctx context.Context, limit int) ([]*Job, error) {
	const op = "rescue expired"
	if err := checkRescueLimit(op, limit); err != nil {
		return nil, err
	}
	t := rules.Now() // leases are judged by when the call was made
	if err := m.lock(ctx, op); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var expired []*memRecord
	for _, r := range m.running {
		if r.job.LeaseExpiresAt.Before(t) {
			expired = append(expired, r)
		}
	}
	slices.SortFunc(expired, func(a, b *memRecord) int { return a.job.LeaseExpiresAt.Compare(b.job.LeaseExpiresAt) })
	out := []*Job{}
	for _, r := range expired[:min(limit, len(expired))] {
		status := releasedStatus(&r.job)
		if status == StatusPending && r.job.Attempt >= r.job.MaxAttempts {
			status = StatusFailed
		}
		if status != StatusCanceled {
			r.job.Error = rules.LeaseExpired
			r.job.Errors = appendAttemptError(r.job.Errors, r.job.Attempt, rules.LeaseExpired, t)
		}
		m.settle(r, status, t)
		out = append(out, cloneJob(&r.job))
	}
	return out, nil
}
