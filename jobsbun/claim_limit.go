package jobsbun

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
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
			// With the clock after the lock was taken: now() is when the
			// transaction began, which may be long before.
			err := db.QueryRowContext(ctx, "SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock(hashtextextended(?, 7428513690412))) AS _l",
				"jobs limit "+s.String()).Scan(&t)
			if err != nil {
				return nil, err
			}
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
			if len(lc.ids) < q.Limit && ad.Admit(kind, queue, key) {
				lc.ids = append(lc.ids, id)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		switch {
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

// blockedPairsMax is how many pending queue-key pairs allBlocked looks at.
const blockedPairsMax = 8

// allBlocked reports whether no pending job that q may claim can fit
// because every queue and key with pending jobs is full, found by reading
// the distinct pairs from jobs_fair_idx (one seek each). It gives up
// (false) past blockedPairsMax pairs, on a pair without a key, or without
// kinds in q. It spares a claim in which nothing fits (one user's 10 000
// jobs at its limit, say) the walk of every such job.
func (r *Repository) allBlocked(ctx context.Context, db bun.IDB, q jobs.ClaimQuery, closed []admit.Scope, full map[admit.Scope][]string) (bool, error) {
	if len(q.Kinds) == 0 {
		return false, nil
	}
	if r.d.pg {
		pairs, err := r.pgPairs(ctx, db, q.Queues)
		if err != nil || len(pairs) > blockedPairsMax {
			return false, err
		}
		for _, p := range pairs {
			if !pairBlocked(p, q.Kinds, closed, full) {
				return false, nil
			}
		}
		return true, nil
	}
	var after *admit.QueueKey
	for range blockedPairsMax + 1 {
		p, ok, err := r.nextPair(ctx, db, q.Queues, after)
		switch {
		case err != nil:
			return false, err
		case !ok:
			return true, nil // every pair is full
		}
		if !pairBlocked(p, q.Kinds, closed, full) {
			return false, nil
		}
		after = &p
	}
	return false, nil
}

// pgPairs reads up to blockedPairsMax+1 distinct pending queue-key pairs
// in the queues (empty: any) on PostgreSQL, in one statement: a recursive
// walk that seeks jobs_fair_idx past each pair (one round trip instead of
// one per pair, while the claim holds its locks).
func (r *Repository) pgPairs(ctx context.Context, db bun.IDB, queues []string) ([]admit.QueueKey, error) {
	in, args := "", []any{}
	if len(queues) > 0 {
		in = " AND queue IN (?)"
		args = append(args, bun.In(queues), bun.In(queues))
	}
	const pending = "status = 'pending' AND fair_rank >= 0"
	query := "WITH RECURSIVE _p(q, k) AS ((SELECT queue, concurrency_key FROM jobs WHERE " + pending + in +
		" ORDER BY queue, concurrency_key LIMIT 1) UNION ALL SELECT _n.queue, _n.concurrency_key FROM _p, LATERAL (" +
		"SELECT queue, concurrency_key FROM jobs WHERE " + pending + in + " AND (queue, concurrency_key) > (_p.q, _p.k)" +
		" ORDER BY queue, concurrency_key LIMIT 1) _n) SELECT q, k FROM _p LIMIT " + strconv.Itoa(blockedPairsMax+1)
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []admit.QueueKey
	for rows.Next() {
		var p admit.QueueKey
		if err := rows.Scan(&p.Queue, &p.Key); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, p)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

// pairBlocked reports whether the jobs of queue and key p, of any of the
// kinds, fit no limit any more.
func pairBlocked(p admit.QueueKey, kinds []string, closed []admit.Scope, full map[admit.Scope][]string) bool {
	if p.Key == "" {
		return false
	}
	qs := admit.Scope{Type: admit.QueueScope, Name: p.Queue}
	if slices.Contains(closed, qs) || slices.Contains(full[qs], p.Key) {
		return true
	}
	for _, k := range kinds {
		ks := admit.Scope{Type: admit.KindScope, Name: k}
		if !slices.Contains(closed, ks) && !slices.Contains(full[ks], p.Key) {
			return false
		}
	}
	return true
}

// nextPair returns the first pending queue-key pair after after (nil: the
// first) in the queues (empty: any), and false when there is none. It
// seeks within after's queue first, then past it: SQLite seeks a row value
// (queue, key) > (?, ?) on the queue alone and would read every job of
// the queue.
func (r *Repository) nextPair(ctx context.Context, db bun.IDB, queues []string, after *admit.QueueKey) (admit.QueueKey, bool, error) {
	for _, within := range []bool{true, false} {
		if within && after == nil {
			continue
		}
		query, args := pairSQL(queues, after, within)
		var p admit.QueueKey
		err := db.QueryRowContext(ctx, query, args...).Scan(&p.Queue, &p.Key)
		switch {
		case err == nil:
			return p, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return p, false, err
		}
	}
	return admit.QueueKey{}, false, nil
}

// pairSQL reads the first pending queue-key pair after after (nil: the
// first), in the claim's queues: within after's queue, or past it.
func pairSQL(queues []string, after *admit.QueueKey, within bool) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString("SELECT queue, concurrency_key FROM jobs WHERE status = 'pending' AND fair_rank >= 0")
	if len(queues) > 0 {
		b.WriteString(" AND queue IN (")
		placeholders(&b, len(queues))
		b.WriteString(")")
		for _, q := range queues {
			args = append(args, q)
		}
	}
	switch {
	case after != nil && within:
		b.WriteString(" AND queue = ? AND concurrency_key > ?")
		args = append(args, after.Queue, after.Key)
	case after != nil:
		b.WriteString(" AND queue > ?")
		args = append(args, after.Queue)
	}
	b.WriteString(" ORDER BY queue, concurrency_key LIMIT 1")
	return b.String(), args
}

// shut reports whether the closed scopes leave q nothing to claim: every
// kind of q, or every queue of q, is closed.
func shut(q jobs.ClaimQuery, closed []admit.Scope) bool {
	all := func(t byte, names []string) bool {
		if len(names) == 0 {
			return false
		}
		for _, n := range names {
			if !slices.Contains(closed, admit.Scope{Type: t, Name: n}) {
				return false
			}
		}
		return true
	}
	return all(admit.KindScope, q.Kinds) || all(admit.QueueScope, q.Queues)
}
