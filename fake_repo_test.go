package jobs

// THROWAWAY: a minimal in-memory repository so the runner can be tested
// before memory.go lands. Delete when NewMemoryRepository is on main.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

type fakeRepo struct {
	mu   sync.Mutex
	jobs map[uuid.UUID]*Job
}

// NewFakeRepo is the throwaway test repository.
func NewFakeRepo() JobRepository { return &fakeRepo{jobs: map[uuid.UUID]*Job{}} }

func cp(j *Job) *Job { c := *j; c.Errors = slices.Clone(j.Errors); return &c }

func (f *fakeRepo) Create(ctx context.Context, js ...*Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	for _, j := range js {
		if j.UniqueKey != "" {
			found := false
			for _, o := range f.jobs {
				if o.UniqueKey == j.UniqueKey {
					*j = *cp(o)
					j.Duplicate = true
					found = true
				}
			}
			if found {
				continue
			}
		}
		if err := prepareNew(j, now, DefaultMaxPayloadBytes); err != nil {
			return err
		}
		f.jobs[j.ID] = cp(j)
	}
	return nil
}
func (f *fakeRepo) CreateTx(ctx context.Context, tx bun.IDB, js ...*Job) error {
	return invalid("create", "no tx")
}
func (f *fakeRepo) Get(ctx context.Context, id uuid.UUID) (*Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	if j == nil {
		return nil, notFound("get", id)
	}
	return cp(j), nil
}
func (f *fakeRepo) List(ctx context.Context, q ListQuery) (*Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &Page{}
	for _, j := range f.jobs {
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, j.Status) {
			continue
		}
		p.Jobs = append(p.Jobs, cp(j))
	}
	return p, nil
}
func (f *fakeRepo) Stats(ctx context.Context) (*Stats, error) { return &Stats{}, nil }
func (f *fakeRepo) Claim(ctx context.Context, q ClaimQuery) ([]*Job, error) {
	if err := checkClaim(q); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UTC()
	var c []*Job
	for _, j := range f.jobs {
		if j.Status == StatusPending && !j.RunAt.After(now) &&
			(len(q.Kinds) == 0 || slices.Contains(q.Kinds, j.Kind)) &&
			(len(q.Queues) == 0 || slices.Contains(q.Queues, j.Queue)) {
			c = append(c, j)
		}
	}
	slices.SortFunc(c, func(a, b *Job) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return a.RunAt.Compare(b.RunAt)
	})
	if len(c) > q.Limit {
		c = c[:q.Limit]
	}
	out := make([]*Job, len(c))
	for i, j := range c {
		j.Status = StatusRunning
		j.Attempt++
		j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = q.Owner, uuid.NewString(), now.Add(q.LeaseDuration)
		j.StartedAt, j.UpdatedAt = now, now
		out[i] = cp(j)
	}
	return out, nil
}
func (f *fakeRepo) leased(l Lease) *Job {
	j := f.jobs[l.JobID]
	if j == nil || j.Status != StatusRunning || j.LeaseToken != l.Token {
		return nil
	}
	return j
}
func (f *fakeRepo) UpdateProgress(ctx context.Context, lease time.Duration, ups ...ProgressUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, u := range ups {
		if err := u.Progress.Validate(); err != nil {
			return err
		}
	}
	for _, u := range ups {
		j := f.leased(u.Lease)
		if j == nil {
			errs = append(errs, leaseLost("update progress", u.Lease.JobID))
			continue
		}
		j.Progress = u.Progress
		j.LeaseExpiresAt = time.Now().Add(lease)
	}
	return errors.Join(errs...)
}
func (f *fakeRepo) Heartbeat(ctx context.Context, lease time.Duration, ls ...Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, l := range ls {
		j := f.leased(l)
		if j == nil {
			errs = append(errs, leaseLost("heartbeat", l.JobID))
			continue
		}
		j.LeaseExpiresAt = time.Now().Add(lease)
	}
	return errors.Join(errs...)
}
func (f *fakeRepo) Finish(ctx context.Context, cs ...Completion) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		if err := checkCompletion(c, DefaultMaxPayloadBytes); err != nil {
			return err
		}
	}
	var errs []error
	now := time.Now().UTC()
	for _, c := range cs {
		j := f.leased(c.Lease)
		if j == nil {
			errs = append(errs, leaseLost("finish", c.Lease.JobID))
			continue
		}
		j.Status = c.Status
		if c.Error != "" {
			j.Error = c.Error
			j.Errors = appendAttemptError(j.Errors, j.Attempt, c.Error, now)
		}
		if c.Progress != nil {
			j.Progress = *c.Progress
		} else if c.Status == StatusSucceeded {
			j.Progress.Fraction = 1
		}
		j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = "", "", time.Time{}
		if c.Status == StatusPending {
			j.RunAt = c.RunAt
			if j.RunAt.IsZero() {
				j.RunAt = now
			}
		} else {
			j.Result = c.Result
			j.FinishedAt = now
		}
	}
	return errors.Join(errs...)
}
func (f *fakeRepo) Release(ctx context.Context, ls ...Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, l := range ls {
		j := f.leased(l)
		if j == nil {
			errs = append(errs, leaseLost("release", l.JobID))
			continue
		}
		j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = "", "", time.Time{}
		j.Attempt--
		if j.CancelRequested {
			j.Status, j.FinishedAt = StatusCanceled, time.Now()
		} else {
			j.Status, j.RunAt = StatusPending, time.Now()
		}
	}
	return errors.Join(errs...)
}
func (f *fakeRepo) RequestCancel(ctx context.Context, id uuid.UUID) (*Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	if j == nil {
		return nil, notFound("cancel", id)
	}
	switch j.Status {
	case StatusPending:
		j.Status, j.FinishedAt = StatusCanceled, time.Now()
	case StatusRunning:
		j.CancelRequested = true
	default:
		return nil, newError(CodeConflict, "cancel", id, "job is %s", j.Status)
	}
	return cp(j), nil
}
func (f *fakeRepo) CancelRequests(ctx context.Context, owner string) ([]uuid.UUID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []uuid.UUID
	for _, j := range f.jobs {
		if j.Status == StatusRunning && j.LeaseOwner == owner && j.CancelRequested {
			ids = append(ids, j.ID)
		}
	}
	return ids, nil
}
func (f *fakeRepo) RescueExpired(ctx context.Context, limit int) ([]*Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Job
	now := time.Now()
	for _, j := range f.jobs {
		if j.Status == StatusRunning && j.LeaseExpiresAt.Before(now) && len(out) < limit {
			j.LeaseOwner, j.LeaseToken, j.LeaseExpiresAt = "", "", time.Time{}
			switch {
			case j.CancelRequested:
				j.Status = StatusCanceled
			case j.Attempt >= j.MaxAttempts:
				j.Status = StatusFailed
			default:
				j.Status, j.RunAt = StatusPending, now
			}
			out = append(out, cp(j))
		}
	}
	return out, nil
}
func (f *fakeRepo) Prune(ctx context.Context, before time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id, j := range f.jobs {
		if j.Status.Terminal() && j.FinishedAt.Before(before) {
			delete(f.jobs, id)
			n++
		}
	}
	return n, nil
}
func (f *fakeRepo) Close() error { return nil }
