package jobsbun

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// This file holds the worker side of [Repository]: claim and the fenced
// writes of a lease holder (their batch machinery is in fenced.go).

// Claim implements [jobs.JobRepository.Claim] with one UPDATE … WHERE id IN
// (SELECT … ORDER BY … LIMIT n) RETURNING statement, served by the partial
// index on pending rows. Each row gets its own fresh lease token. A claimed
// row that cannot be read back is not returned: it fails at once with the
// reason as its error.
func (r *Repository) Claim(ctx context.Context, q jobs.ClaimQuery) ([]*jobs.Job, error) {
	const op = "claim"
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var (
		claimed []*jobs.Job
		t       time.Time
		next    time.Time // see ClaimQuery.NextStart
	)
	limited := hasLimits(q)
	// On SQLite the claim is a transaction, so that its clock is read once
	// it holds the write lock: a claim that waited for another process
	// still hands out a whole lease. On PostgreSQL no claim is: a limited
	// claim is one statement (claim_limit_pg.go).
	if r.d.pg && !limited {
		// Rank the jobs that came due (fair.go); on SQLite in the claim's
		// transaction below, in a limited claim on PostgreSQL in its
		// statement.
		if err := r.write(ctx, op, false, func(ctx context.Context, db bun.IDB) error {
			return r.promote(ctx, db, rules.Now())
		}); err != nil {
			return nil, err
		}
	}
	err := r.write(ctx, op, r.d.sqlite(), func(ctx context.Context, db bun.IDB) error {
		t = rules.Now()
		claimed, next = nil, time.Time{}
		if r.d.sqlite() {
			if err := r.promote(ctx, db, t); err != nil {
				return err
			}
		}
		var (
			query string
			args  []any
			lc    *limitedClaim
		)
		switch {
		case !limited:
			query, args = r.claimSQL(q, t)
		case r.d.pg:
			query, args = r.pgLimitedClaimSQL(q)
		default:
			var err error
			lc, err = r.admitClaim(ctx, db, q)
			if err != nil || lc.ids == nil {
				if lc != nil {
					next = lc.ad.NextStart()
				}
				return err
			}
			t, next = lc.t, lc.ad.NextStart()
			query, args = r.claimIDsSQL(q, t, lc.ids)
		}
		rows, err := r.query(ctx, db, query, args...)
		if err != nil {
			return err
		}
		s := newClaimScanner()
		if r.d.pg {
			s = newJobScanner()
		}
		var bad []unreadable
		claimed, bad, err = scanLenient(rows, s)
		if err == nil {
			err = r.withDeps(ctx, db, claimed)
		}
		if err == nil && lc != nil {
			err = r.logStarts(ctx, db, lc, claimed)
		}
		if err != nil || len(bad) == 0 {
			return err
		}
		// A row the claim cannot read fails at once (unreadable.go).
		// On SQLite in the claim's transaction; on PostgreSQL, where the
		// claim has committed, a failure of that write must not lose the
		// jobs claimed beside it: the row then stays running until its
		// lease expires, and the rescue fails it.
		err = r.failUnreadable(ctx, db, t, false, bad)
		if r.d.pg {
			err = nil
		}
		return err
	})
	if err == nil && limited && r.d.pg && hasRates(q) {
		next, err = r.pgNextStart(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	if q.NextStart != nil {
		*q.NextStart = next
	}
	if r.d.sqlite() {
		// The values the claim set from Go, as stored (to the microsecond).
		expires := t.Add(q.LeaseDuration).Truncate(time.Microsecond)
		for _, j := range claimed {
			j.Status, j.LeaseOwner = jobs.StatusRunning, q.Owner
			j.StartedAt, j.UpdatedAt, j.LeaseExpiresAt, j.FinishedAt = t, t, expires, time.Time{}
		}
	}
	sortClaimed(claimed)
	if claimed == nil {
		claimed = []*jobs.Job{}
	}
	return claimed, nil
}

// claimSQL is the claim statement of q at time t and its arguments.
func (r *Repository) claimSQL(q jobs.ClaimQuery, t time.Time) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 10)
	b.WriteString("UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ")
	b.WriteString(r.d.newToken())
	b.WriteString(", lease_owner = ?, started_at = ?, updated_at = ?, lease_expires_at = ")
	args = append(args, q.Owner, t, t)
	var s string
	s, args = r.d.leaseUntil(args, t, q.LeaseDuration)
	b.WriteString(s)
	var sub strings.Builder
	sub.WriteString("SELECT id FROM jobs WHERE status = 'pending' AND fair_rank > -1 AND run_at <= ")
	s, args = r.d.now(args, t)
	sub.WriteString(s)
	if len(q.Queues) > 0 {
		sub.WriteString(" AND queue IN (")
		placeholders(&sub, len(q.Queues))
		sub.WriteString(")")
		for _, s := range q.Queues {
			args = append(args, s)
		}
	}
	if len(q.Kinds) > 0 {
		sub.WriteString(" AND kind IN (")
		placeholders(&sub, len(q.Kinds))
		sub.WriteString(")")
		for _, s := range q.Kinds {
			args = append(args, s)
		}
	}
	sub.WriteString(notPausedSQL) // schema_queues.go
	// On SQLite the limit is bound as +?: a plain bound LIMIT makes SQLite
	// re-prepare the statement on every run (it plans with the value), and a
	// literal would prepare one statement per limit.
	sub.WriteString(" ORDER BY priority DESC, fair_rank, run_at, id LIMIT " + r.d.limitArg())
	args = append(args, q.Limit)
	sub.WriteString(r.d.skipLocked())
	returning := jobColumns
	if r.d.sqlite() {
		returning = sqliteClaimColumns
	}
	b.WriteString(" WHERE " + r.d.idIn(sub.String()) + " AND " + r.d.stillPending() + " RETURNING " + returning)
	return b.String(), args
}

// claimIDsSQL is the claim statement of q at time t for the pending jobs
// named by ids (picked by a limited claim), and its arguments.
func (r *Repository) claimIDsSQL(q jobs.ClaimQuery, t time.Time, ids []string) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 8+len(ids))
	b.WriteString("UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ")
	b.WriteString(r.d.newToken())
	b.WriteString(", lease_owner = ?, started_at = ?, updated_at = ?, lease_expires_at = ")
	args = append(args, q.Owner, t, t)
	var s string
	s, args = r.d.leaseUntil(args, t, q.LeaseDuration)
	b.WriteString(s)
	returning := jobColumns
	if r.d.sqlite() {
		returning = sqliteClaimColumns
	}
	b.WriteString(" WHERE ")
	s, args = r.d.idList(args, ids)
	b.WriteString(s)
	b.WriteString(" AND " + r.d.stillPending() + " RETURNING " + returning)
	return b.String(), args
}

// UpdateProgress implements [jobs.JobRepository.UpdateProgress] in one
// statement. When one lease appears several times, its last update wins.
// A call with checkpoints saves them with their output and the other
// updates in one write (checkpoint.go): one statement on PostgreSQL, one
// transaction on SQLite; a call without any takes the plain path.
func (r *Repository) UpdateProgress(ctx context.Context, lease time.Duration, updates ...jobs.ProgressUpdate) error {
	const op = "update progress"
	if err := refused(op, rules.LeaseDuration(lease)); err != nil {
		return err
	}
	saves := false
	for _, u := range updates {
		if err := u.Validate(r.maxPayload); err != nil {
			if e, ok := errors.AsType[*jobs.Error](err); ok {
				e.JobID = u.Lease.JobID
			}
			return err
		}
		saves = saves || u.Checkpoint != nil
	}
	if saves {
		return r.saveCheckpoints(ctx, op, lease, updates)
	}
	updates, _ = dedupe(updates, func(u jobs.ProgressUpdate) jobs.Lease { return u.Lease }, false)
	rows := make([]fencedRow, len(updates))
	for i, u := range updates {
		rows[i] = fencedRow{lease: u.Lease, data: []any{u.Progress.Fraction, u.Progress.Message}}
	}
	return r.runFenced(ctx, op, true, fencedBatch{cols: []batchCol{{"d_frac", "float8"}, {"d_msg", "text"}}, rows: rows,
		set: func(args []any, t time.Time) (string, []any) {
			args = append(args, t)
			exp, args := r.d.leaseUntil(args, t, lease)
			return "progress_fraction = d_frac, progress_message = d_msg, updated_at = ?, lease_expires_at = " + exp, args
		}})
}

// Heartbeat implements [jobs.JobRepository.Heartbeat] in one statement.
func (r *Repository) Heartbeat(ctx context.Context, lease time.Duration, leases ...jobs.Lease) error {
	const op = "heartbeat"
	if err := refused(op, rules.LeaseDuration(lease)); err != nil {
		return err
	}
	return r.runFenced(ctx, op, true, fencedBatch{rows: leaseRows(leases), set: func(args []any, t time.Time) (string, []any) {
		args = append(args, t)
		exp, args := r.d.leaseUntil(args, t, lease)
		return "updated_at = ?, lease_expires_at = " + exp, args
	}})
}

// Finish implements [jobs.JobRepository.Finish] in one statement: every
// completion's row is joined from a VALUES list, and the attempt error is
// appended to the job's history in SQL. When one lease appears several
// times, its first completion is applied and the later ones report
// ErrLeaseLost (the first one ended the lease); completions of the same job
// under other leases are matched on their own. A job with a cancel request
// ends canceled whatever the completion asks. A completion's output is
// appended in the same write unless the job is left pending; completions
// without output do not pay for it (their statements are those of before).
func (r *Repository) Finish(ctx context.Context, completions ...jobs.Completion) error {
	const op = "finish"
	for _, c := range completions {
		if err := c.Validate(r.maxPayload); err != nil {
			if e, ok := errors.AsType[*jobs.Error](err); ok && e.JobID == uuid.Nil {
				e.JobID = c.Lease.JobID
			}
			return err
		}
	}
	keep, dropped := dedupe(completions, func(c jobs.Completion) jobs.Lease { return c.Lease }, true)
	errs := make([]error, 0, len(dropped)+1)
	for _, c := range dropped {
		errs = append(errs, leaseLost(op, c.Lease.JobID))
	}
	d := r.d
	// On SQLite a plain success (no result, error or progress: the common
	// case) needs only the lease in its row and the others carry every
	// value: fewer values to bind. On PostgreSQL the rows travel as one
	// JSON value and one statement (one notification) does all.
	// A cancel request wins over whatever the attempt reports: the job ends
	// canceled, without its result.
	const (
		canceled  = "cancel_requested"
		succeeded = "(d_status = 'succeeded' AND NOT cancel_requested)"
		retry     = "(d_status = 'pending' AND NOT cancel_requested)"
	)
	fullCols := []batchCol{{"d_status", "text"}, {"d_result", "text"}, {"d_error", "text"},
		{"d_run_at", "timestamptz"}, {"d_has_progress", "boolean"}, {"d_frac", "float8"}, {"d_msg", "text"}}
	// fullSet is the SET clause of the rows that carry values, with extra
	// (assignments, each followed by ", ") inserted.
	fullSet := func(extra string) func(args []any, t time.Time) (string, []any) {
		return func(args []any, t time.Time) (string, []any) {
			set := "status = CASE WHEN " + canceled + " THEN 'canceled' ELSE d_status END, " +
				"result = CASE WHEN " + succeeded + " THEN " + d.jsonFromText("d_result") + " ELSE result END, " +
				"progress_fraction = CASE WHEN d_has_progress THEN d_frac WHEN " + succeeded + " THEN 1 ELSE progress_fraction END, " +
				"progress_message = CASE WHEN d_has_progress THEN d_msg ELSE progress_message END, " +
				"error = CASE WHEN d_error <> '' THEN d_error ELSE error END, " +
				"errors = CASE WHEN d_error <> '' THEN " + d.appendError("errors", "attempt", "d_error", "?") + " ELSE errors END, " +
				"run_at = CASE WHEN " + retry + " THEN COALESCE(d_run_at, ?" + d.castTime() + ") ELSE run_at END, " +
				// A retry due later is ranked when it comes due (fair.go).
				"fair_rank = CASE WHEN " + retry + " AND d_run_at > ?" + d.castTime() + " THEN -1 ELSE fair_rank END, " +
				"finished_at = CASE WHEN " + retry + " THEN NULL ELSE ?" + d.castTime() + " END, " + extra +
				"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?"
			return set, append(args, t.Format(time.RFC3339Nano), t, t, t, t)
		}
	}
	var plain, full, withOutput []fencedRow
	for _, c := range keep {
		if d.sqlite() && c.Status == jobs.StatusSucceeded && c.Progress == nil && c.Error == "" && len(bytes.TrimSpace(c.Result)) == 0 && len(c.Output) == 0 {
			plain = append(plain, fencedRow{lease: c.Lease, want: jobs.StatusSucceeded})
			continue
		}
		var runAt any // nil: at once, the time of the write
		if !c.RunAt.IsZero() {
			runAt = c.RunAt.UTC().Truncate(time.Microsecond)
		}
		var frac float64
		var msg string
		if c.Progress != nil {
			frac, msg = c.Progress.Fraction, c.Progress.Message
		}
		var result []byte
		if len(bytes.TrimSpace(c.Result)) > 0 {
			result = c.Result
		}
		row := fencedRow{lease: c.Lease, want: c.Status, data: []any{string(c.Status), result,
			rules.CleanText(rules.ErrorText(c.Error)), runAt, c.Progress != nil, frac, msg}}
		if len(c.Output) > 0 {
			row.items = c.Output
			withOutput = append(withOutput, row)
		} else {
			full = append(full, row)
		}
	}
	err := r.runFenced(ctx, op, false, fencedBatch{rows: plain, set: func(args []any, t time.Time) (string, []any) {
		return "status = CASE WHEN " + canceled + " THEN 'canceled' ELSE 'succeeded' END, result = NULL, " +
			"progress_fraction = CASE WHEN " + canceled + " THEN progress_fraction ELSE 1 END, finished_at = ?" + d.castTime() + ", " +
			"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?", append(args, t, t)
	}}, fencedBatch{cols: fullCols, rows: full, set: fullSet("")},
		fencedBatch{cols: fullCols, rows: withOutput, output: true,
			// A retry drops the output: the next attempt redoes that work.
			set: fullSet("output_seq = output_seq + CASE WHEN " + retry + " THEN 0 ELSE d_n END, ")})
	return errors.Join(append(errs, err)...)
}

// Release implements [jobs.JobRepository.Release] in one statement.
func (r *Repository) Release(ctx context.Context, leases ...jobs.Lease) error {
	const op = "release"
	rows := leaseRows(leases)
	for i := range rows {
		rows[i].want = jobs.StatusPending
	}
	return r.runFenced(ctx, op, false, fencedBatch{rows: rows, set: func(args []any, t time.Time) (string, []any) {
		return "status = CASE WHEN cancel_requested THEN 'canceled' ELSE 'pending' END, " +
			"attempt = CASE WHEN attempt > 0 THEN attempt - 1 ELSE 0 END, " +
			"finished_at = CASE WHEN cancel_requested THEN ?" + r.d.castTime() + " ELSE NULL END, " +
			"lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?", append(args, t, t)
	}})
}
