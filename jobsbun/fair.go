package jobsbun

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Fair ranks (see package admit): each job is inserted with its rank in
// jobs.fair_rank, max(V, L + 1) plus its place among the new jobs of its
// queue and key, where V is the claims' position in the queue (the smallest
// rank of its due pending jobs: headRankSQL) and L the key's last pending
// rank (jobs_fair_idx). The INSERT computes V and L itself, on PostgreSQL
// with the function jobs_fair_base once per queue and key (create_pg.go),
// which reads the table as it was before the statement, and for a single
// job on SQLite with subqueries (foldedRankSQL), so that an enqueue costs
// no extra round trip; a batch on SQLite reads them first with one
// statement per 200 pairs (readHeads). The claim walks
// jobs_claim_idx by priority, rank, RunAt and ID. Two concurrent creates
// may give equal ranks; RunAt and ID then decide.

// Jobs not due when they are created or retried get rank -1 and stay out of
// the claim index: claims would otherwise step over every job that waits
// for a later RunAt (10 000 retries in backoff, say) on each claim. Each
// claim first ranks the unranked jobs that came due, up to promoteBatch,
// as Create would have ranked them then (promote): after the pending jobs
// of their key and not before the first due job of their queue. Jobs that
// come due together share those ranks; RunAt then decides.

// promoteBatch bounds the jobs one claim ranks.
const promoteBatch = 1000

// promote ranks the unranked pending jobs whose RunAt has come by t. On
// PostgreSQL it first looks whether there is any (one probe of
// jobs_promote_idx): an UPDATE that changes nothing still runs the
// statement trigger of notifications (schema_notify.go), most of the cost
// of an empty promotion.
func (r *Repository) promote(ctx context.Context, db bun.IDB, t time.Time) error {
	if r.d.pg {
		var due bool
		err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND fair_rank < 0 AND run_at <= ?)", t).Scan(&due)
		if err != nil || !due {
			return err
		}
	}
	return r.exec(ctx, db, r.promoteSQL(), t, t, t)
}

// promoteSQL is the statement of promote; its arguments are three times
// the time of the call. It is built once per dialect, not at each claim.
func (r *Repository) promoteSQL() string {
	if r.d.pg {
		return promoteSQLs[1]
	}
	return promoteSQLs[0]
}

// promoteSQLs are promoteSQL on SQLite and on PostgreSQL.
var promoteSQLs = [2]string{
	promoteStmt(sqlDialect{}, "?"+sqlDialect{}.castTime()),
	promoteStmt(sqlDialect{pg: true}, "?"+sqlDialect{pg: true}.castTime()),
}

// promoteStmt is the statement of promote in dialect d at the time that
// the SQL expression now gives.
func promoteStmt(d sqlDialect, now string) string {
	return "UPDATE jobs SET fair_rank = " + d.greatest() + "(" + headRankSQL(d, "jobs.queue", now) + ", " +
		nextKeyRankSQL("jobs.queue", "jobs.concurrency_key") + ") WHERE " +
		d.idIn("SELECT id FROM jobs WHERE status = 'pending' AND fair_rank < 0 AND run_at <= "+now+" LIMIT "+strconv.Itoa(promoteBatch)+d.skipLocked()) +
		" AND fair_rank < 0"
}

// headRankSQL is V of a job of the queue at the time now (SQL expressions
// that it names twice): the smallest rank among the due pending jobs of the
// queue, 0 when none. It is the smaller of two index seeks: the head of the
// jobs with a key (jobs_fair_head_idx, which holds no job without a key)
// and the head of the jobs without one (jobs_fair_idx, under the empty key), so
// that a job without a key costs one index entry fewer to create and to
// claim.
func headRankSQL(d sqlDialect, queue, now string) string {
	const none = "9223372036854775807" // no job: greater than any rank
	keyed := "(SELECT _rh.fair_rank FROM jobs _rh WHERE _rh.status = 'pending' AND _rh.fair_rank >= 0 AND _rh.concurrency_key <> '' AND _rh.queue = " + queue +
		" AND _rh.run_at <= " + now + " ORDER BY _rh.fair_rank LIMIT 1)"
	keyless := "(SELECT _rl.fair_rank FROM jobs _rl WHERE _rl.status = 'pending' AND _rl.fair_rank >= 0 AND _rl.queue = " + queue +
		" AND _rl.concurrency_key = '' AND _rl.run_at <= " + now + " ORDER BY _rl.fair_rank LIMIT 1)"
	return "COALESCE(NULLIF(" + d.least() + "(COALESCE(" + keyed + ", " + none + "), COALESCE(" + keyless + ", " + none + ")), " + none + "), 0)"
}

// nextKeyRankSQL is L + 1 of a job of the queue and key (SQL expressions):
// one past the largest rank among the key's pending jobs in the queue, 0
// when none.
func nextKeyRankSQL(queue, key string) string {
	return "COALESCE(" + keyAfterLastSQL(queue, key) + ", 0)"
}

// keyAfterLastSQL is L + 1 of the key in the queue, NULL when the key has
// no pending job there.
func keyAfterLastSQL(queue, key string) string {
	return "(SELECT _rk.fair_rank + 1 FROM jobs _rk WHERE _rk.status = 'pending' AND _rk.fair_rank >= 0 AND _rk.queue = " + queue +
		" AND _rk.concurrency_key = " + key + " ORDER BY _rk.fair_rank DESC LIMIT 1)"
}

// baseRankSQL is max(V, L + 1) of a job of the queue and key at the time
// now (SQL expressions, named in this order), written so that V is read
// only when the key has no pending job: the key's pending jobs are due
// jobs of the queue, so V is at most L, and max(V, L + 1) is L + 1.
// COALESCE stops at its first value that is not NULL, so enqueueing to a
// key (or to the jobs without one) that has a backlog, the common case,
// costs one index seek instead of three. (The one difference: a ranked
// job whose RunAt a clock behind the writer's does not see as due yet
// does not count in V, and its key's next job may rank below V; it is
// then among the next claims, which is where its key's turn is anyway.)
func baseRankSQL(d sqlDialect, queue, key, queue2, now string) string {
	return "COALESCE(" + keyAfterLastSQL(queue, key) + ", " + headRankSQL(d, queue2, now) + ")"
}

// fairRanks are the ranks of new jobs by ID.
type fairRanks map[uuid.UUID]int64

// fairPairsPerQuery bounds the queue-key pairs of one head statement.
const fairPairsPerQuery = 200

// foldedRankSQL is the fair_rank of a due job that its INSERT computes:
// max(V, L + 1) plus the job's offset, given as the arguments offset,
// queue, key, queue, now, queue and now on SQLite (baseRankSQL); PostgreSQL's
// (create_pg.go) reads them from the unnested row _u.
var foldedRankSQL = "(? + " + baseRankSQL(sqlDialect{}, "?", "?", "?", "?") + ")"

// ranks returns the ranks of js at time t: -1 for the jobs not due yet;
// with fold, the offsets of the others that their INSERT adds to max(V,
// L + 1) (foldedRankSQL); without, their ranks, from the heads of their
// queues and keys read through db.
func (r *Repository) ranks(ctx context.Context, db bun.IDB, js []*jobs.Job, t time.Time, fold bool) (fairRanks, error) {
	out := make(fairRanks, len(js))
	var due []*jobs.Job
	for _, j := range js {
		if j.RunAt.After(t) {
			out[j.ID] = -1 // ranked when it comes due: promote
			continue
		}
		due = append(due, j)
	}
	if len(due) == 0 {
		return out, nil
	}
	js = due
	if fold && len(js) == 1 {
		out[js[0].ID] = 0 // the INSERT adds max(V, L + 1) to no offset
		return out, nil
	}
	nj := make([]admit.NewJob, len(js))
	for i, j := range js {
		nj[i] = admit.NewJob{Queue: j.Queue, Key: j.ConcurrencyKey, Priority: j.Priority, RunAt: j.RunAt, ID: j.ID}
	}
	pairs := admit.Pairs(nj)
	heads := make(map[admit.QueueKey]admit.Head, len(pairs))
	for lo := 0; lo < len(pairs) && !fold; lo += fairPairsPerQuery {
		part := pairs[lo:min(lo+fairPairsPerQuery, len(pairs))]
		if err := r.readHeads(ctx, db, part, t, heads); err != nil {
			return nil, err
		}
	}
	rk := admit.Ranks(nj, heads)
	for i, j := range js {
		out[j.ID] = rk[i]
	}
	return out, nil
}

// readHeads reads V and L of each pair into heads.
func (r *Repository) readHeads(ctx context.Context, db bun.IDB, pairs []admit.QueueKey, t time.Time, heads map[admit.QueueKey]admit.Head) error {
	query, args := r.headsSQL(pairs, t)
	rows, err := r.query(ctx, db, query, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var p admit.QueueKey
		var v, l nullInt
		if err := rows.Scan(&p.Queue, &p.Key, &v, &l); err != nil {
			rows.Close()
			return err
		}
		heads[p] = admit.Head{V: v.n, HasV: v.ok, L: l.n, HasL: l.ok}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// nullInt scans a nullable integer.
type nullInt struct {
	n  int64
	ok bool
}

func (n *nullInt) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		n.ok = false
	case int64:
		n.n, n.ok = v, true
	case int32:
		n.n, n.ok = int64(v), true
	default:
		return errors.New("jobs: fair rank is not an integer")
	}
	return nil
}

// headsSQL is the statement that reads V and L of each pair at time t, and
// its arguments.
func (r *Repository) headsSQL(pairs []admit.QueueKey, t time.Time) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 2+2*len(pairs))
	now, args := r.d.now(args, t)
	if r.d.sqlite() {
		args = append(args, t) // headRankSQL names now twice
	}
	b.WriteString("SELECT _q, _k, " + headRankSQL(r.d, "_q", now) +
		", (SELECT fair_rank FROM jobs WHERE status = 'pending' AND fair_rank >= 0 AND queue = _q AND concurrency_key = _k" +
		" ORDER BY fair_rank DESC LIMIT 1) FROM (")
	for i, p := range pairs {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT ?" + r.d.cast("text") + " AS _q, ?" + r.d.cast("text") + " AS _k")
		args = append(args, p.Queue, p.Key)
	}
	b.WriteString(") AS _p")
	return b.String(), args
}
