package jobstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// hour is the lease of claims that must not expire during a case.
const hour = time.Hour

// slack absorbs the rounding of stored times (PostgreSQL keeps
// microseconds) when a case checks that a time lies within a window.
const slack = time.Millisecond

// harness is what a case works with: the repository under test and the
// suite's configuration, plus shorthands that fail the case on error.
type harness struct {
	repo jobs.JobRepository
	cfg  *config
}

// job returns a job of the given kind with a small payload.
func job(kind string) *jobs.Job {
	return &jobs.Job{Kind: kind, Payload: json.RawMessage(`{"n":1}`)}
}

// sized returns a JSON value of exactly n bytes: a string, or a number
// when n < 2.
func sized(n int) json.RawMessage {
	if n < 2 {
		return json.RawMessage(strings.Repeat("1", n))
	}
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

// jobsOf returns n jobs of the given kind.
func jobsOf(kind string, n int) []*jobs.Job {
	out := make([]*jobs.Job, n)
	for i := range out {
		out[i] = &jobs.Job{Kind: kind, Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return out
}

// create creates the jobs and fails the case on error.
func (h *harness) create(t *testing.T, js ...*jobs.Job) []*jobs.Job {
	t.Helper()
	require.NoError(t, h.repo.Create(t.Context(), js...))
	return js
}

// createN creates n jobs of kind in one call.
func (h *harness) createN(t *testing.T, kind string, n int) []*jobs.Job {
	t.Helper()
	return h.create(t, jobsOf(kind, n)...)
}

// get returns the stored job.
func (h *harness) get(t *testing.T, id uuid.UUID) *jobs.Job {
	t.Helper()
	j, err := h.repo.Get(t.Context(), id)
	require.NoError(t, err)
	return j
}

// claim claims with owner "w1" and a long lease.
func (h *harness) claim(t *testing.T, limit int) []*jobs.Job {
	t.Helper()
	return h.claimQ(t, jobs.ClaimQuery{Owner: "w1", Limit: limit, LeaseDuration: hour})
}

// claimQ claims with the query.
func (h *harness) claimQ(t *testing.T, q jobs.ClaimQuery) []*jobs.Job {
	t.Helper()
	got, err := h.repo.Claim(t.Context(), q)
	require.NoError(t, err)
	return got
}

// claimOne claims exactly one job with owner "w1" and a long lease.
func (h *harness) claimOne(t *testing.T) *jobs.Job {
	t.Helper()
	got := h.claim(t, 1)
	require.Len(t, got, 1, "one job should be claimable")
	return got[0]
}

// running creates one job and claims it.
func (h *harness) running(t *testing.T) *jobs.Job {
	t.Helper()
	h.create(t, job("run"))
	return h.claimOne(t)
}

// reclaimed returns one job claimed twice: first under a lease that
// expired and was rescued (stale), then under a fresh one (current).
func (h *harness) reclaimed(t *testing.T) (stale, current *jobs.Job) {
	t.Helper()
	h.create(t, job("again"))
	got := h.claimQ(t, jobs.ClaimQuery{Owner: "w0", Limit: 1, LeaseDuration: time.Millisecond})
	require.Len(t, got, 1)
	stale = got[0]
	waitExpired(t, stale)
	rescued, err := h.repo.RescueExpired(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, rescued, 1)
	current = h.claimOne(t)
	require.Equal(t, stale.ID, current.ID)
	return stale, current
}

// finish finishes the job under its lease and fails the case on error.
func (h *harness) finish(t *testing.T, j *jobs.Job, st jobs.Status) {
	t.Helper()
	require.NoError(t, h.repo.Finish(t.Context(), jobs.Completion{Lease: j.Lease(), Status: st}))
}

// inStatus creates a job and brings it to st through the API, returning the
// stored job and, for running jobs, the claimed job with its lease.
func (h *harness) inStatus(t *testing.T, st jobs.Status) *jobs.Job {
	t.Helper()
	switch st {
	case jobs.StatusPending:
		return h.create(t, job("s"))[0]
	case jobs.StatusRunning:
		return h.running(t)
	case jobs.StatusCanceled:
		j := h.create(t, job("s"))[0]
		_, err := h.repo.RequestCancel(t.Context(), j.ID)
		require.NoError(t, err)
		return h.get(t, j.ID)
	default:
		j := h.running(t)
		h.finish(t, j, st)
		return h.get(t, j.ID)
	}
}

// stats returns the repository's counts.
func (h *harness) stats(t *testing.T) *jobs.Stats {
	t.Helper()
	s, err := h.repo.Stats(t.Context())
	require.NoError(t, err)
	return s
}

// total is the number of stored jobs.
func (h *harness) total(t *testing.T) int {
	t.Helper()
	return h.stats(t).Total
}

// listAll returns every stored job, newest first, paging with limit.
func (h *harness) listAll(t *testing.T, q jobs.ListQuery) []*jobs.Job {
	t.Helper()
	var all []*jobs.Job
	for range 10_000 {
		p, err := h.repo.List(t.Context(), q)
		require.NoError(t, err)
		all = append(all, p.Jobs...)
		if p.Next == "" {
			return all
		}
		q.Cursor = p.Next
	}
	require.FailNow(t, "List never returned an empty Next")
	return nil
}

// requireSame fails unless a and b are the same stored job, field by field
// (times compared as instants, payloads as JSON documents).
func requireSame(t *testing.T, want, got *jobs.Job) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.JSONEq(t, string(jsonOf(t, want)), string(jsonOf(t, got)), "job %s changed", want.ID)
	require.Equal(t, want.LeaseToken, got.LeaseToken, "lease token changed")
}

// jsonOf is the job's JSON form, with the payload and result normalised.
func jsonOf(t *testing.T, j *jobs.Job) []byte {
	t.Helper()
	b, err := json.Marshal(j)
	require.NoError(t, err)
	return b
}

// requireCode fails unless err matches the sentinel.
func requireCode(t *testing.T, err, sentinel error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, sentinel, msgAndArgs...)
	_, ok := errors.AsType[*jobs.Error](err)
	require.True(t, ok, "error %v is not a *jobs.Error", err)
}

// requireLost fails unless err is a lost lease naming exactly the given jobs.
func requireLost(t *testing.T, err error, ids ...uuid.UUID) {
	t.Helper()
	requireCode(t, err, jobs.ErrLeaseLost)
	var got []uuid.UUID
	collectLost(err, &got)
	require.ElementsMatch(t, ids, got, "lease-lost errors should name the lost jobs: %v", err)
}

// requireCanceledInstead fails unless err holds exactly one ErrCanceled
// error per given job (completions stored as canceled because a cancel was
// requested) and nothing else.
func requireCanceledInstead(t *testing.T, err error, ids ...uuid.UUID) {
	t.Helper()
	requireCode(t, err, jobs.ErrCanceled)
	var got []uuid.UUID
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*jobs.Error); ok {
			require.Equal(t, jobs.ErrCanceled, e.Code, "unexpected error %v", e)
			got = append(got, e.JobID)
			return
		}
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	require.ElementsMatch(t, ids, got, "canceled errors should name the canceled jobs: %v", err)
}

// collectLost gathers the JobIDs of the lease-lost [*jobs.Error] values in
// err's tree.
func collectLost(err error, ids *[]uuid.UUID) {
	if e, ok := err.(*jobs.Error); ok {
		if e.Code == jobs.ErrLeaseLost {
			*ids = append(*ids, e.JobID)
		}
		return
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			collectLost(e, ids)
		}
		return
	}
	if next := errors.Unwrap(err); next != nil {
		collectLost(next, ids)
	}
}

// requireWithin fails unless got lies in [from-slack, to+slack].
func requireWithin(t *testing.T, got, from, to time.Time, what string) {
	t.Helper()
	require.False(t, got.Before(from.Add(-slack)), "%s %v is before %v", what, got, from)
	require.False(t, got.After(to.Add(slack)), "%s %v is after %v", what, got, to)
}

// requireUTC fails unless every time of j is in UTC.
func requireUTC(t *testing.T, j *jobs.Job) {
	t.Helper()
	for name, tm := range map[string]time.Time{
		"RunAt": j.RunAt, "CreatedAt": j.CreatedAt, "UpdatedAt": j.UpdatedAt,
		"StartedAt": j.StartedAt, "FinishedAt": j.FinishedAt, "LeaseExpiresAt": j.LeaseExpiresAt,
	} {
		require.Equal(t, time.UTC, tm.Location(), "%s of job %s is not UTC", name, j.ID)
	}
	for _, e := range j.Errors {
		require.Equal(t, time.UTC, e.At.Location(), "error time of job %s is not UTC", j.ID)
	}
}

// waitExpired waits until the wall clock is past the lease expiry of every
// job in js.
func waitExpired(t *testing.T, js ...*jobs.Job) {
	t.Helper()
	var last time.Time
	for _, j := range js {
		if j.LeaseExpiresAt.After(last) {
			last = j.LeaseExpiresAt
		}
	}
	require.Eventually(t, func() bool { return time.Now().After(last.Add(slack)) },
		10*time.Second, time.Millisecond, "leases never expired")
}

// ids returns the IDs of js.
func ids(js []*jobs.Job) []uuid.UUID {
	out := make([]uuid.UUID, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}
