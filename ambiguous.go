package jobs

import (
	"context"
	"errors"

	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// Ambiguous commits. When a Finish fails with a lost connection, the
// database may or may not have committed it (database/sql cannot tell; see
// driver.ErrBadConn), and the completer retries it. If the first try did
// commit, the retry finds the lease already cleared and reports
// ErrLeaseLost although the outcome is stored. confirmFinished tells the two
// apart by reading the jobs back, so that hooks and watchers see the stored
// outcome and the log does not claim a lost lease. Writing twice is never a
// risk: every Finish is fenced by the lease token, so a retry of a committed
// Finish changes nothing.

// transient reports whether err leaves the outcome of a write unknown.
func transient(err error) bool {
	_, other := splitErrors(err)
	c := CodeOf(other)
	return c == ErrUnavailable || c == codeInternal
}

// confirmFinished clears, in perJob, the ErrLeaseLost of each outcome whose
// job is stored exactly as an earlier, ambiguous try of the same Finish
// would have left it.
func (r *Runner) confirmFinished(ctx context.Context, fin []outcome, perJob map[uuid.UUID]error) {
	for _, o := range fin {
		id := o.e.lease.JobID
		if !errors.Is(perJob[id], ErrLeaseLost) {
			continue
		}
		j, err := r.repo.Get(ctx, id)
		if err != nil || !storedAs(j, o) {
			continue
		}
		r.cfg.logger.Debug("outcome was stored by an ambiguous commit", "job_id", id, "status", j.Status)
		delete(perJob, id)
	}
}

// storedAs reports whether j looks as o's completion leaves it: its status
// (a retry of a job with a cancel request ends canceled), the same attempt,
// no lease, and the attempt's error when there is one.
func storedAs(j *Job, o outcome) bool {
	want := o.c.Status
	if want == StatusPending && j.CancelRequested {
		want = StatusCanceled
	}
	if j.Status != want || j.Attempt != o.e.attempt || j.LeaseToken != "" {
		return false
	}
	return o.c.Error == "" || j.Error == rules.ErrorText(o.c.Error)
}
