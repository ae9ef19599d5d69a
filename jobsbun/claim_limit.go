package jobsbun

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// This file holds the claims with flow-control limits
// ([jobs.ClaimQuery].KindLimits and QueueLimits). A claim without limits
// keeps its single statement (attempt.go). A limited claim is one
// transaction that
//
//  1. serialises itself with every other claim of the same limited kinds
//     and queues: on SQLite the write lock does (writes are serialised
//     already); on PostgreSQL a transaction-scoped advisory lock per
//     limited kind and queue, taken in sorted order, so that claims of
//     unlimited kinds keep their speed and never wait for it;
//  2. counts the running jobs of the limited scopes (jobs_running_idx) and
//     the recent starts of the rate-limited ones (job_starts);
//  3. walks the pending jobs in claim order, leaving out the scopes that
//     admit nothing, and lets package admit pick those that fit, page by
//     page, until it has q.Limit or no pending job is left;
//  4. claims the picked jobs by ID and logs their starts.
//
// Because the counts are read after the lock is held, and a claim's own
// writes commit before its lock is released, no two claims of a scope ever
// count from the same state: the limits are never exceeded.

// limitWalkPage is how many pending rows one page of the walk reads.
const limitWalkPage = 256

// hasLimits reports whether q has any limit that limits something.
func hasLimits(q jobs.ClaimQuery) bool {
	for _, m := range []map[string]jobs.Limit{q.KindLimits, q.QueueLimits} {
		for _, l := range m {
			if l != (jobs.Limit{}) {
				return true
			}
		}
	}
	return false
}

// limitedClaim is what the admission of a limited claim decided.
type limitedClaim struct {
	t   time.Time       // the claim's time: the start of the picked jobs
	ad  *admit.Admitter // the admissions, for the start log and NextStart
	ids []string        // the picked jobs; nil: none
}

// admitClaim runs steps 1 to 3 in the claim's transaction db.
func (r *Repository) admitClaim(ctx context.Context, db bun.IDB, q jobs.ClaimQuery) (*limitedClaim, error) {
	conv := func(m map[string]jobs.Limit) map[string]admit.Limit {
		out := make(map[string]admit.Limit, len(m))
		for k, l := range m {
			out[k] = admit.Limit(l)
		}
		return out
	}
	kinds, queues := conv(q.KindLimits), conv(q.QueueLimits)
	scopes := admit.New(time.Time{}, kinds, queues).Scopes()
	t := rules.Now()
	if r.d.pg {
		for _, s := range scopes {
			if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 7428513690412))", "jobs limit "+s.String()); err != nil {
				return nil, err
			}
		}
		// The clock after the locks were taken: now() is when the
		// transaction began, which may be long before.
		if err := db.QueryRowContext(ctx, "SELECT clock_timestamp()").Scan(&t); err != nil {
			return nil, err
		}
		t = t.UTC().Truncate(time.Microsecond)
	}
	lc := &limitedClaim{t: t, ad: admit.New(t, kinds, queues)}
	ad := lc.ad
	if err := r.countRunning(ctx, db, scopes, ad); err != nil {
		return nil, err
	}
	if err := r.readStarts(ctx, db, t, ad); err != nil {
		return nil, err
	}
	closed := ad.Closed()
	var after *walkPos
	for len(lc.ids) < q.Limit {
		query, args := r.walkSQL(q, t, closed, after)
		rows, err := r.query(ctx, db, query, args...)
		if err != nil {
			return nil, err
		}
		n := 0
		for rows.Next() {
			var (
				id, kind, queue, key string
				p                    walkPos
				runAt                timeCol
			)
			if err := rows.Scan(&id, &kind, &queue, &key, &p.priority, &p.rank, &runAt); err != nil {
				rows.Close()
				return nil, err
			}
			n++
			p.runAt, p.id = runAt.t, id
			after = &p
			if len(lc.ids) < q.Limit && ad.Admit(kind, queue, key) {
				lc.ids = append(lc.ids, id)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		if n < limitWalkPage {
			break
		}
	}
	return lc, nil
}

// countRunning counts the running jobs of the limited scopes into ad.
func (r *Repository) countRunning(ctx context.Context, db bun.IDB, scopes []admit.Scope, ad *admit.Admitter) error {
	query, args := runningSQL(scopes)
	rows, err := r.query(ctx, db, query, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var kind, queue, key string
		var n int
		if err := rows.Scan(&kind, &queue, &key, &n); err != nil {
			rows.Close()
			return err
		}
		ad.Running(kind, queue, key, n)
	}
	return errors.Join(rows.Err(), rows.Close())
}

// readStarts drops the start log rows of ad's rate-limited scopes that
// no window reaches any more, and counts the others into ad.
func (r *Repository) readStarts(ctx context.Context, db bun.IDB, t time.Time, ad *admit.Admitter) error {
	scopes, window := ad.RateScopes()
	if len(scopes) == 0 {
		return nil
	}
	names := make([]any, len(scopes))
	for i, s := range scopes {
		names[i] = s.String()
	}
	var in strings.Builder
	placeholders(&in, len(names))
	if err := r.exec(ctx, db, "DELETE FROM job_starts WHERE scope IN ("+in.String()+") AND started_at <= ?",
		append(append([]any{}, names...), t.Add(-admit.MaxPeriod))...); err != nil {
		return err
	}
	rows, err := r.query(ctx, db, "SELECT scope, ckey, started_at FROM job_starts WHERE scope IN ("+in.String()+") AND started_at > ?",
		append(append([]any{}, names...), t.Add(-window))...)
	if err != nil {
		return err
	}
	byName := make(map[string]admit.Scope, len(scopes))
	for _, s := range scopes {
		byName[s.String()] = s
	}
	for rows.Next() {
		var scope, key string
		var at timeCol
		if err := rows.Scan(&scope, &key, &at); err != nil {
			rows.Close()
			return err
		}
		ad.Started(byName[scope], key, at.t)
	}
	return errors.Join(rows.Err(), rows.Close())
}

// logStarts records the starts of the claimed jobs in the logs of their
// rate-limited scopes (step 4).
func (r *Repository) logStarts(ctx context.Context, db bun.IDB, lc *limitedClaim, claimed []*jobs.Job) error {
	var b strings.Builder
	var args []any
	n := 0
	for _, j := range claimed {
		for _, s := range lc.ad.Logged(j.Kind, j.Queue) {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?" + r.d.castTime() + ")")
			args = append(args, s.String(), j.ConcurrencyKey, lc.t)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	_, err := db.ExecContext(ctx, "INSERT INTO job_starts (scope, ckey, started_at) VALUES "+b.String(), args...)
	return err
}

// walkPos is the claim-order position of the last row a walk page read.
type walkPos struct {
	priority int
	rank     int64
	runAt    time.Time
	id       string
}

// walkSQL reads one page of the pending jobs that q may claim at t, in
// claim order, after position after (nil: from the start), leaving out
// the kinds and queues in closed.
func (r *Repository) walkSQL(q jobs.ClaimQuery, t time.Time, closed []admit.Scope, after *walkPos) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 16)
	b.WriteString("SELECT id, kind, queue, concurrency_key, priority, fair_rank, " + r.d.timeText("run_at") + " FROM jobs WHERE status = 'pending' AND run_at <= ")
	var s string
	s, args = r.d.now(args, t)
	b.WriteString(s)
	in := func(col string, not bool, vals []string) {
		if len(vals) == 0 {
			return
		}
		b.WriteString(" AND " + col)
		if not {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		placeholders(&b, len(vals))
		b.WriteString(")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("queue", false, q.Queues)
	in("kind", false, q.Kinds)
	var ck, cq []string
	for _, c := range closed {
		if c.Type == admit.KindScope {
			ck = append(ck, c.Name)
		} else {
			cq = append(cq, c.Name)
		}
	}
	in("kind", true, ck)
	in("queue", true, cq)
	if after != nil {
		b.WriteString(" AND (priority < ? OR (priority = ? AND (fair_rank > ? OR (fair_rank = ? AND (run_at > ? OR (run_at = ? AND id > ?" + r.d.castUUID() + "))))))")
		args = append(args, after.priority, after.priority, after.rank, after.rank, after.runAt, after.runAt, after.id)
	}
	b.WriteString(" ORDER BY priority DESC, fair_rank, run_at, id LIMIT " + r.d.limitArg())
	args = append(args, limitWalkPage)
	return b.String(), args
}

// idList is "id IN (…)" of the given IDs and its arguments appended to args.
func (d sqlDialect) idList(args []any, ids []string) (string, []any) {
	if d.pg {
		return "id = ANY(?::uuid[])", append(args, pgdialect.Array(ids))
	}
	var b strings.Builder
	b.WriteString("id IN (")
	placeholders(&b, len(ids))
	b.WriteString(")")
	for _, id := range ids {
		args = append(args, id)
	}
	return b.String(), args
}

// timeText is a timestamp column as the walk reads it: as text on SQLite
// (see sqliteJobColumns), as is on PostgreSQL.
func (d sqlDialect) timeText(col string) string {
	if d.pg {
		return col
	}
	return "+" + col
}

// runningSQL is the statement that counts the running jobs of the scopes
// by kind, queue and key, and its arguments.
func runningSQL(scopes []admit.Scope) (string, []any) {
	var kinds, queues []string
	for _, s := range scopes {
		if s.Type == admit.KindScope {
			kinds = append(kinds, s.Name)
		} else {
			queues = append(queues, s.Name)
		}
	}
	var b strings.Builder
	var args []any
	b.WriteString("SELECT kind, queue, concurrency_key, count(*) FROM jobs WHERE status = 'running' AND (")
	if len(kinds) > 0 {
		b.WriteString("kind IN (")
		placeholders(&b, len(kinds))
		b.WriteString(")")
		for _, k := range kinds {
			args = append(args, k)
		}
	}
	if len(queues) > 0 {
		if len(kinds) > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("queue IN (")
		placeholders(&b, len(queues))
		b.WriteString(")")
		for _, q := range queues {
			args = append(args, q)
		}
	}
	b.WriteString(") GROUP BY kind, queue, concurrency_key")
	return b.String(), args
}
