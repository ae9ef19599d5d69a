package jobsbun

import (
	"context"
	"strings"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// A limited claim on PostgreSQL holds no lock across a client round trip:
// a process stopped (SIGSTOP) or cut off in the middle of a claim must not
// stall any other process's claims. It runs in two parts:
//
//  1. the walk (claim_limit.go) reads the running counts, the start log
//     and the pending jobs in autocommit statements, without a lock, and
//     picks candidates as if the counts it read were current;
//  2. one autocommit statement (pgLimitedClaimSQL) claims the candidates
//     that still fit: jobs_limit_admit (pgAdmitFunc) takes a
//     transaction-scoped advisory lock per limited kind and queue, in
//     sorted order, then re-counts the running jobs and the recent starts
//     of each candidate's scopes and keys, locks the candidates still
//     pending (FOR UPDATE SKIP LOCKED), admits them in the walk's order
//     and logs their starts; the UPDATE around it marks the admitted jobs
//     running. The server finishes the statement, and releases the locks
//     at its commit, even if the client froze after sending it.
//
// Why this is exact: the admission re-counts after it holds the locks of
// every scope it admits into, and every admission into a scope happens in
// a statement that holds that scope's lock until it commits. A PL/pgSQL
// function that is VOLATILE (the default) takes a fresh snapshot for each
// statement in it, so the counts read after the lock see every admission
// committed before it, unlike a CTE of one plain statement, whose snapshot
// is the statement's start, before it waited for the lock. Leaving status
// running (finish, retry, release, rescue) needs no lock: a count that
// misses it only admits less, never more. A candidate claimed, cancelled
// or retried since the walk is skipped. The one case the lock does not
// cover is a runner that claims the kind without declaring its limit
// (Limit's doc: every runner must declare the same limits): its claims are
// counted once committed, but not waited for.
//
// The walk's picks can only be cut down by the admission: the claim may
// take fewer jobs than fit (a later claim takes them), never more.

// pgAdmitFunc creates jobs_limit_admit(scopes, running, per_key, rate,
// key_rate, window_us, cand): the candidates cand (in claim order) that the
// limits admit, claimed by nobody else while the statement runs. scopes are
// the limited scopes as admit.Scope.String, sorted; the other arrays give
// each scope's Limit fields (window in microseconds).
const pgAdmitFunc = `CREATE FUNCTION jobs_limit_admit(scopes text[], lim_running int[], lim_per_key int[],
	lim_rate int[], lim_key_rate int[], window_us bigint[], cand uuid[])
RETURNS SETOF uuid LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	ns int := coalesce(array_length(scopes, 1), 0);
	t timestamptz;
	c record;
	i int;
	ok boolean;
	is_kind boolean;
	nm text;
	n bigint;
	a_kind text[] := '{}';
	a_queue text[] := '{}';
	a_key text[] := '{}';
BEGIN
	FOR i IN 1 .. ns LOOP
		PERFORM pg_advisory_xact_lock(hashtextextended('jobs limit ' || scopes[i], 7428513690412));
	END LOOP;
	t := clock_timestamp();
	-- The claim's start time, for the UPDATE that calls this function.
	PERFORM set_config('jobs.claim_time', t::text, true);
	FOR c IN SELECT j.id, j.kind, j.queue, j.concurrency_key AS ckey FROM jobs j
		WHERE j.id = ANY(cand) AND j.status = 'pending'
		ORDER BY array_position(cand, j.id) FOR UPDATE SKIP LOCKED
	LOOP
		ok := true;
		FOR i IN 1 .. ns LOOP
			is_kind := left(scopes[i], 2) = 'k:';
			nm := substr(scopes[i], 3);
			CONTINUE WHEN nm <> CASE WHEN is_kind THEN c.kind ELSE c.queue END;
			IF lim_running[i] > 0 THEN
				IF is_kind THEN
					SELECT count(*) INTO n FROM jobs WHERE status = 'running' AND kind = nm;
				ELSE
					SELECT count(*) INTO n FROM jobs WHERE status = 'running' AND queue = nm;
				END IF;
				n := n + (SELECT count(*) FROM unnest(a_kind, a_queue) AS a(k, q)
					WHERE CASE WHEN is_kind THEN a.k ELSE a.q END = nm);
				IF n >= lim_running[i] THEN ok := false; EXIT; END IF;
			END IF;
			IF lim_rate[i] > 0 THEN
				SELECT count(*) INTO n FROM job_starts
					WHERE scope = scopes[i] AND started_at > t - window_us[i] * interval '1 microsecond';
				IF n >= lim_rate[i] THEN ok := false; EXIT; END IF;
			END IF;
			CONTINUE WHEN c.ckey = '';
			IF lim_per_key[i] > 0 THEN
				IF is_kind THEN
					SELECT count(*) INTO n FROM jobs WHERE status = 'running' AND kind = nm AND concurrency_key = c.ckey;
				ELSE
					SELECT count(*) INTO n FROM jobs WHERE status = 'running' AND queue = nm AND concurrency_key = c.ckey;
				END IF;
				n := n + (SELECT count(*) FROM unnest(a_kind, a_queue, a_key) AS a(k, q, ck)
					WHERE CASE WHEN is_kind THEN a.k ELSE a.q END = nm AND a.ck = c.ckey);
				IF n >= lim_per_key[i] THEN ok := false; EXIT; END IF;
			END IF;
			IF lim_key_rate[i] > 0 THEN
				SELECT count(*) INTO n FROM job_starts
					WHERE scope = scopes[i] AND ckey = c.ckey AND started_at > t - window_us[i] * interval '1 microsecond';
				IF n >= lim_key_rate[i] THEN ok := false; EXIT; END IF;
			END IF;
		END LOOP;
		CONTINUE WHEN NOT ok;
		a_kind := a_kind || c.kind;
		a_queue := a_queue || c.queue;
		a_key := a_key || c.ckey;
		INSERT INTO job_starts (scope, ckey, started_at)
			SELECT x.s, c.ckey, t FROM unnest(scopes, lim_rate, lim_key_rate) AS x(s, r, kr)
			WHERE (x.r > 0 OR x.kr > 0) AND (x.s = 'k:' || c.kind OR x.s = 'q:' || c.queue);
		RETURN NEXT c.id;
	END LOOP;
END $$`

// pgLimitedClaimSQL is the statement of part 2 above: the claim of q at
// time t of the candidates ids that jobs_limit_admit admits under the
// limits of q, and its arguments.
func (r *Repository) pgLimitedClaimSQL(q jobs.ClaimQuery, t time.Time, ids []string) (string, []any) {
	var scopes []string
	var running, perKey, rate, keyRate []int
	var window []int64
	add := func(s admit.Scope, l jobs.Limit) {
		scopes = append(scopes, s.String())
		running, perKey = append(running, l.Running), append(perKey, l.PerKey)
		rate, keyRate = append(rate, l.Rate), append(keyRate, l.KeyRate)
		window = append(window, admit.Limit(l).Window().Microseconds())
	}
	kinds, queues := admit.Limits(q.KindLimits), admit.Limits(q.QueueLimits)
	for _, s := range admit.New(t, kinds, queues).Scopes() { // sorted: the lock order
		if s.Type == admit.KindScope {
			add(s, q.KindLimits[s.Name])
		} else {
			add(s, q.QueueLimits[s.Name])
		}
	}
	var b strings.Builder
	args := make([]any, 0, 12)
	b.WriteString("UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = ")
	b.WriteString(r.d.newToken())
	// started_at is the time jobs_limit_admit logged the starts at, so
	// that a rate's window ends exactly a period after the job started.
	b.WriteString(", lease_owner = ?, started_at = current_setting('jobs.claim_time')::timestamptz")
	b.WriteString(", updated_at = current_setting('jobs.claim_time')::timestamptz, lease_expires_at = ")
	args = append(args, q.Owner)
	s, args := r.d.leaseUntil(args, t, q.LeaseDuration)
	b.WriteString(s)
	b.WriteString(" WHERE id = ANY(ARRAY(SELECT _a FROM jobs_limit_admit(?::text[], ?::int[], ?::int[], ?::int[], ?::int[], ?::bigint[], ?::uuid[]) AS _a))")
	args = append(args, pgdialect.Array(scopes), pgdialect.Array(running), pgdialect.Array(perKey),
		pgdialect.Array(rate), pgdialect.Array(keyRate), pgdialect.Array(window), pgdialect.Array(ids))
	b.WriteString(" AND " + r.d.stillPending() + " RETURNING " + jobColumns)
	return b.String(), args
}

// pgNextStart reads the time at which a start that a rate holds back may
// come, for [jobs.ClaimQuery].NextStart, from the start log after a claim
// on PostgreSQL whose walk saw a rate held back. The walk's own figure
// counts the starts it picked at the walk's time, a little before
// jobs_limit_admit logged them; this one may also be earlier than needed
// (a key that is full but has no job waiting), which costs one early claim.
func (r *Repository) pgNextStart(ctx context.Context, q jobs.ClaimQuery) (time.Time, error) {
	t := rules.Now()
	ad := admit.New(t, admit.Limits(q.KindLimits), admit.Limits(q.QueueLimits))
	err := r.write(ctx, "claim", false, func(ctx context.Context, db bun.IDB) error {
		return r.readStarts(ctx, db, t, ad)
	})
	ad.Closed()
	ad.FullKeys()
	return ad.NextStart(), err
}
