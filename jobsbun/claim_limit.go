package jobsbun

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// This file holds the claims with flow-control limits
// ([jobs.ClaimQuery].KindLimits and QueueLimits) on SQLite. A claim
// without limits keeps its single statement (attempt.go); on PostgreSQL a
// limited claim is one statement too (claim_limit_pg.go). A limited claim
// on SQLite
//
//  1. counts the running jobs of the limited scopes (jobs_rescue_idx) and
//     the recent starts of the rate-limited ones (job_starts);
//  2. walks the pending jobs in claim order, leaving out the scopes that
//     admit nothing, and lets package admit pick those that fit, page by
//     page, until it has q.Limit or no pending job is left;
//  3. claims the picked jobs by ID and logs their starts.
//
// All three run in one write transaction: the write lock serialises it
// with every other write, so no two claims count from the same state, and
// the limits are never exceeded.

// limitWalkPage is how many pending rows one page of the walk reads.
const limitWalkPage = 256

// limitWalkWindow bounds how far the walk looks past the first job it
// admits: up to that job's rank plus the claim's limit plus this many
// ranks. The first page reads one row: the database skips the jobs left
// out (their kinds, queues or keys are full) inside the index until it
// finds one that fits; the window then keeps the pages that follow from
// skipping the whole backlog of a full key (10 000 jobs of one user at its
// limit) only to fill the claim. Jobs of other keys past the window are
// claimed by a later claim: under start-time fair queuing a key's next job
// is never far past the first that fits, unless it has a backlog of its
// own. A claim in which nothing fits still walks every pending job of its
// kinds and queues (in the index only).
const limitWalkWindow = 64

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

// hasRates reports whether q has a rate limit (Rate or KeyRate).
func hasRates(q jobs.ClaimQuery) bool {
	for _, m := range []map[string]jobs.Limit{q.KindLimits, q.QueueLimits} {
		for _, l := range m {
			if admit.Limit(l).HasRate() {
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

// admitClaim runs steps 1 and 2 in db, the claim's transaction.
func (r *Repository) admitClaim(ctx context.Context, db bun.IDB, q jobs.ClaimQuery) (*limitedClaim, error) {
	kinds, queues := admit.Limits(q.KindLimits), admit.Limits(q.QueueLimits)
	t := rules.Now()
	lc := &limitedClaim{t: t, ad: admit.New(t, kinds, queues)}
	ad := lc.ad
	if err := r.countRunning(ctx, db, ad.Scopes(), ad); err != nil {
		return nil, err
	}
	if err := r.readStarts(ctx, db, t, ad); err != nil {
		return nil, err
	}
	closed, full := ad.Closed(), ad.FullKeys()
	if shut(q, closed) {
		return lc, nil
	}
	if len(full) > 0 {
		blocked, err := r.allBlocked(ctx, db, q, closed, full)
		if err != nil || blocked {
			return lc, err
		}
	}
	// The walk goes one priority at a time: within a priority the claim
	// index is ordered by rank, RunAt and ID, so each page seeks to where
	// the last one ended and stops at the window's ceiling, instead of
	// reading the index from its start. The first row of each priority
	// (below the last one walked) comes from a plain ordered read.
	var (
		done    bool     // nothing more can fit
		level   *int     // the priority being walked; nil: find the next
		after   *walkPos // the last row read in level
		ceiling int64    // see limitWalkWindow
	)
	for len(lc.ids) < q.Limit {
		page := limitWalkPage
		if level == nil {
			page = 1
		}
		query, args := r.walkSQL(q, t, closed, full, level, after, ceiling, page)
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
			if level == nil {
				level = &p.priority
				ceiling = p.rank + int64(q.Limit) + limitWalkWindow
			}
			after = &p
			if len(lc.ids) >= q.Limit {
				break
			}
			if ad.Admit(kind, queue, key) {
				lc.ids = append(lc.ids, id)
			} else if shut(q, ad.Closed()) {
				done = true // this claim filled its kinds' or queues' limits
				break
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		switch {
		case done:
			return lc, nil
		case level == nil:
			return lc, nil // no pending job fits
		case n < page:
			// This priority is walked up to its ceiling: go on below it.
			below := *level - 1
			if *level == math.MinInt32 {
				return lc, nil
			}
			level, after = nil, &walkPos{priority: below}
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
// rate-limited scopes (step 3 on SQLite).
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

// walkSQL reads one page of up to page pending jobs that q may claim at
// t, in claim order, leaving out the kinds and queues in closed and the
// keys in full (by scope). With level nil it reads from the start, or,
// when after is set, from priority after.priority down; with level set it
// reads the jobs of that priority after position after, ranked at most
// ceiling. The claim index holds every column these filters test, so
// left-out rows cost an index entry each, not a row read.
func (r *Repository) walkSQL(q jobs.ClaimQuery, t time.Time, closed []admit.Scope, full map[admit.Scope][]string, level *int, after *walkPos, ceiling int64, page int) (string, []any) {
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
	b.WriteString(notPausedSQL) // limited claims honour pauses too
	for _, s := range slices.SortedFunc(maps.Keys(full), func(x, y admit.Scope) int { return strings.Compare(x.String(), y.String()) }) {
		col := "kind"
		if s.Type == admit.QueueScope {
			col = "queue"
		}
		b.WriteString(" AND NOT (" + col + " = ? AND concurrency_key IN (")
		placeholders(&b, len(full[s]))
		b.WriteString("))")
		args = append(args, s.Name)
		for _, k := range full[s] {
			args = append(args, k)
		}
	}
	switch {
	case level != nil:
		// fair_rank >= ? gives the seek its start: SQLite would otherwise
		// start from the "fair_rank > -1" that the partial index needs.
		b.WriteString(" AND priority = ? AND fair_rank >= ? AND (fair_rank, run_at, id) > (?, ?, ?" + r.d.castUUID() + ") AND fair_rank <= ?")
		args = append(args, *level, after.rank, after.rank, after.runAt, after.id, ceiling)
	case after != nil:
		b.WriteString(" AND priority <= ?")
		args = append(args, after.priority)
	}
	// Last: with two lower bounds on fair_rank, SQLite seeks with the first
	// one it meets, and the seek must start at the keyset's.
	b.WriteString(" AND fair_rank > -1 ORDER BY priority DESC, fair_rank, run_at, id LIMIT " + r.d.limitArg())
	args = append(args, page)
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
