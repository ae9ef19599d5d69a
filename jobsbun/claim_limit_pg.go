package jobsbun

import (
	"context"
	"strconv"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// A limited claim on PostgreSQL is one autocommit statement, SELECT … FROM
// jobs_limit_claim(…) (pgClaimFunc), so that it costs one round trip and
// holds no lock across one: a process stopped (SIGSTOP) or cut off after
// sending it stalls no other process, since the server finishes the
// statement and releases its locks at its commit. The function
//
//  1. ranks the jobs that came due (promote, fair.go);
//  2. takes a transaction-scoped advisory lock per limited kind and queue,
//     in sorted order, then counts the running jobs and the recent starts
//     of each, which shuts the scopes at their limit and finds the keys at
//     theirs (both left out of the walk by its WHERE clause);
//  3. walks the pending jobs in claim order and admits those that fit,
//     counting its own admissions and re-counting each candidate's key,
//     locks each admitted row still pending (FOR UPDATE SKIP LOCKED) and
//     logs its starts; it stops at the claim's limit or after
//     claimScanMargin rows past it;
//  4. marks the admitted jobs running and returns them.
//
// Why this is exact: the counts are read after the locks of every scope
// the claim admits into are held, and every admission into a scope happens
// in a statement that holds that scope's lock until it commits. A PL/pgSQL
// function that is VOLATILE (the default) takes a fresh snapshot for each
// statement in it, so the counts read after the lock see every admission
// committed before it, unlike a CTE of one plain statement, whose snapshot
// is the statement's start, before it waited for the lock. Leaving status
// running (finish, retry, release, rescue) needs no lock: a count that
// misses it only admits less, never more. The one case the lock does not
// cover is a runner that claims the kind without declaring its limit
// (Limit's doc: every runner must declare the same limits): its claims are
// counted once committed, but not waited for.

// claimScanMargin is how many rows past its limit the walk of a limited
// claim on PostgreSQL reads at most. The walk's WHERE clause leaves out the
// kinds, queues and keys that were at their limits when it began, so the
// rows it reads and passes over are those of keys that this claim's own
// admissions filled; under fair turns between keys they are few.
const claimScanMargin = 256

// pgClaimFunc creates jobs_limit_claim(owner, lease_us, qs, ks, lim,
// scopes, running, per_key, rate, key_rate, window_us): the claim of up to
// lim jobs of the queues qs and kinds ks (empty: any) for owner with a
// lease of lease_us microseconds, under the limits of the scopes (the
// limited scopes as admit.Scope.String, sorted; the other arrays give each
// scope's Limit fields, the window in microseconds). It returns the claimed
// rows.
var pgClaimFunc = `CREATE FUNCTION jobs_limit_claim(p_owner text, p_lease_us bigint, qs text[], ks text[], lim int,
	scopes text[], lim_running int[], lim_per_key int[], lim_rate int[], lim_key_rate int[], window_us bigint[])
RETURNS SETOF jobs LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_sort = off SET enable_indexonlyscan = off SET jit = off AS $$
DECLARE
	ns int := coalesce(array_length(scopes, 1), 0);
	t timestamptz;
	c record;
	cur refcursor;
	blocked boolean;
	np int;
	pq text;
	pk text;
	p0 int;
	r0 bigint;
	i int;
	ok boolean;
	is_kind boolean[] := '{}';
	nm text[] := '{}';
	n_run bigint[] := '{}';
	n_start bigint[] := '{}';
	closed_k text[] := '{}';
	closed_q text[] := '{}';
	full_k text[] := '{}';
	full_q text[] := '{}';
	kc jsonb[] := '{}';
	kci jsonb;
	fk text[];
	ids uuid[] := '{}';
	n bigint;
BEGIN
	IF EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND fair_rank < 0 AND run_at <= now()) THEN
		` + promoteStmt(sqlDialect{pg: true}, "now()") + `;
	END IF;
	FOR i IN 1 .. ns LOOP
		PERFORM pg_advisory_xact_lock(hashtextextended('jobs limit ' || scopes[i], 7428513690412));
	END LOOP;
	t := clock_timestamp();
	FOR i IN 1 .. ns LOOP
		is_kind[i] := left(scopes[i], 2) = 'k:';
		nm[i] := substr(scopes[i], 3);
		-- One read of the scope's running jobs: the total, and the count
		-- of each key when a per-key limit needs it.
		kci := '{}';
		IF lim_per_key[i] = 0 AND is_kind[i] THEN
			SELECT count(*) INTO n FROM jobs WHERE status = 'running' AND kind = nm[i];
		ELSIF lim_per_key[i] = 0 THEN
			SELECT count(*) INTO n FROM jobs WHERE status = 'running' AND queue = nm[i];
		ELSIF is_kind[i] THEN
			SELECT coalesce(sum(r.n), 0), coalesce(jsonb_object_agg(r.k, r.n) FILTER (WHERE r.k <> ''), '{}')
				INTO n, kci FROM (SELECT concurrency_key AS k, count(*) AS n FROM jobs
					WHERE status = 'running' AND kind = nm[i] GROUP BY concurrency_key) r;
		ELSE
			SELECT coalesce(sum(r.n), 0), coalesce(jsonb_object_agg(r.k, r.n) FILTER (WHERE r.k <> ''), '{}')
				INTO n, kci FROM (SELECT concurrency_key AS k, count(*) AS n FROM jobs
					WHERE status = 'running' AND queue = nm[i] GROUP BY concurrency_key) r;
		END IF;
		kc[i] := kci;
		n_run[i] := n;
		n_start[i] := 0;
		IF lim_rate[i] > 0 OR lim_key_rate[i] > 0 THEN
			DELETE FROM job_starts WHERE scope = scopes[i] AND started_at <= t - interval '` + maxPeriodText + `';
			SELECT count(*) INTO n FROM job_starts
				WHERE scope = scopes[i] AND started_at > t - window_us[i] * interval '1 microsecond';
			n_start[i] := n;
		END IF;
		IF (lim_running[i] > 0 AND n_run[i] >= lim_running[i]) OR (lim_rate[i] > 0 AND n_start[i] >= lim_rate[i]) THEN
			IF is_kind[i] THEN closed_k := closed_k || nm[i]; ELSE closed_q := closed_q || nm[i]; END IF;
			CONTINUE;
		END IF;
		IF lim_per_key[i] > 0 THEN
			fk := ARRAY(SELECT nm[i] || chr(31) || e.key FROM jsonb_each_text(kc[i]) AS e
				WHERE e.value::int >= lim_per_key[i]);
			IF is_kind[i] THEN full_k := full_k || fk; ELSE full_q := full_q || fk; END IF;
		END IF;
		IF lim_key_rate[i] > 0 THEN
			IF is_kind[i] THEN
				full_k := full_k || ARRAY(SELECT nm[i] || chr(31) || ckey FROM job_starts
					WHERE scope = scopes[i] AND ckey <> '' AND started_at > t - window_us[i] * interval '1 microsecond'
					GROUP BY ckey HAVING count(*) >= lim_key_rate[i]);
			ELSE
				full_q := full_q || ARRAY(SELECT nm[i] || chr(31) || ckey FROM job_starts
					WHERE scope = scopes[i] AND ckey <> '' AND started_at > t - window_us[i] * interval '1 microsecond'
					GROUP BY ckey HAVING count(*) >= lim_key_rate[i]);
			END IF;
		END IF;
	END LOOP;
	IF (cardinality(ks) > 0 AND ks <@ closed_k) OR (cardinality(qs) > 0 AND qs <@ closed_q) THEN
		RETURN;
	END IF;
	-- When every queue and key with pending jobs is full (one user's 10 000
	-- jobs at its limit, say), nothing fits: found from the first few
	-- distinct pairs (one seek each in jobs_fair_idx) instead of a walk of
	-- every such job. A pair without a key, or more than 8, end the check.
	IF cardinality(ks) > 0 AND cardinality(full_k) + cardinality(full_q) > 0 THEN
		blocked := true;
		np := 0;
		FOR pq, pk IN WITH RECURSIVE _p(q, k) AS (
				(SELECT queue, concurrency_key FROM jobs WHERE status = 'pending' AND fair_rank >= 0
					AND (cardinality(qs) = 0 OR queue = ANY(qs)) ORDER BY queue, concurrency_key LIMIT 1)
				UNION ALL SELECT _n.queue, _n.concurrency_key FROM _p, LATERAL (
					SELECT queue, concurrency_key FROM jobs WHERE status = 'pending' AND fair_rank >= 0
						AND (cardinality(qs) = 0 OR queue = ANY(qs)) AND (queue, concurrency_key) > (_p.q, _p.k)
					ORDER BY queue, concurrency_key LIMIT 1) _n)
			SELECT q, k FROM _p LIMIT 9
		LOOP
			np := np + 1;
			IF np > 8 OR pk = '' THEN
				blocked := false;
				EXIT;
			END IF;
			CONTINUE WHEN pq = ANY(closed_q) OR pq || chr(31) || pk = ANY(full_q);
			IF EXISTS (SELECT 1 FROM unnest(ks) AS kk WHERE kk <> ALL(closed_k) AND kk || chr(31) || pk <> ALL(full_k)) THEN
				blocked := false;
				EXIT;
			END IF;
		END LOOP;
		IF blocked THEN
			RETURN;
		END IF;
	END IF;
	-- The walk goes no further than claimScanMargin ranks past the first
	-- row that may fit (at its priority; lower priorities have no such
	-- bound): a key's next job is never far past that row under fair
	-- turns, unless the key has a backlog of its own, and without the
	-- bound a claim would pass over every queued job of a full key to fill
	-- its last places. The rows past it wait for a later claim.
	SELECT j.priority, j.fair_rank INTO p0, r0 FROM jobs j
		` + walkFilters + ` LIMIT 1;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	-- The walk: the pending jobs that may fit, in claim order. With a
	-- per-key limit each row carries rn, its place among the walk's rows of
	-- its key (any kind and queue: at least its place in any scope), so
	-- that the loop needs no count of its own admissions per key; the
	-- rows are then read before the loop. Without, rn is 0 and the rows
	-- stream, so the loop reads no further than it admits.
	IF 0 < ANY(lim_per_key) THEN
		OPEN cur FOR SELECT w.id, w.kind, w.queue, w.ckey, row_number() OVER (PARTITION BY w.ckey ORDER BY w.o) AS rn
			FROM (SELECT j.id, j.kind, j.queue, j.concurrency_key AS ckey, row_number() OVER () AS o
				FROM (SELECT j.id, j.kind, j.queue, j.concurrency_key FROM jobs j
		` + walkFilters + ` LIMIT lim + ` + claimScanMarginText + `) j) w
			ORDER BY w.o;
	ELSE
		OPEN cur FOR SELECT j.id, j.kind, j.queue, j.concurrency_key AS ckey, 0::bigint AS rn FROM jobs j
		` + walkFilters + ` LIMIT lim + ` + claimScanMarginText + `;
	END IF;
	LOOP
		FETCH cur INTO c;
		EXIT WHEN NOT FOUND;
		ok := true;
		FOR i IN 1 .. ns LOOP
			CONTINUE WHEN nm[i] <> CASE WHEN is_kind[i] THEN c.kind ELSE c.queue END;
			IF (lim_running[i] > 0 AND n_run[i] >= lim_running[i]) OR (lim_rate[i] > 0 AND n_start[i] >= lim_rate[i]) THEN
				ok := false; EXIT;
			END IF;
			CONTINUE WHEN c.ckey = '';
			IF lim_per_key[i] > 0 AND coalesce((kc[i] ->> c.ckey)::int, 0) + c.rn > lim_per_key[i] THEN
				ok := false; EXIT;
			END IF;
			IF lim_key_rate[i] > 0 THEN
				SELECT count(*) INTO n FROM job_starts WHERE scope = scopes[i] AND ckey = c.ckey
					AND started_at > t - window_us[i] * interval '1 microsecond';
				IF n >= lim_key_rate[i] THEN ok := false; EXIT; END IF;
			END IF;
		END LOOP;
		CONTINUE WHEN NOT ok;
		FOR i IN 1 .. ns LOOP
			CONTINUE WHEN nm[i] <> CASE WHEN is_kind[i] THEN c.kind ELSE c.queue END;
			n_run[i] := n_run[i] + 1;
			IF lim_running[i] > 0 AND n_run[i] >= lim_running[i] THEN
				IF is_kind[i] THEN closed_k := closed_k || nm[i]; ELSE closed_q := closed_q || nm[i]; END IF;
			END IF;
			IF lim_rate[i] > 0 OR lim_key_rate[i] > 0 THEN
				n_start[i] := n_start[i] + 1;
				INSERT INTO job_starts (scope, ckey, started_at) VALUES (scopes[i], c.ckey, t);
			END IF;
		END LOOP;
		ids := ids || c.id;
		-- Done when the claim is full, or when its own admissions filled
		-- every kind or queue it may claim.
		EXIT WHEN cardinality(ids) >= lim OR (cardinality(ks) > 0 AND ks <@ closed_k) OR (cardinality(qs) > 0 AND qs <@ closed_q);
	END LOOP;
	IF cardinality(ids) = 0 THEN
		RETURN;
	END IF;
	RETURN QUERY UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = gen_random_uuid()::text,
		lease_owner = p_owner, started_at = t, updated_at = t,
		lease_expires_at = clock_timestamp() + p_lease_us * interval '1 microsecond'
		WHERE id = ANY(ids) AND status = 'pending' RETURNING jobs.*;
END $$`

// walkFilters is the WHERE and ORDER BY clauses of the walk of
// pgClaimFunc: the pending jobs that the claim may take and that no limit
// filled before it began, in claim order. The bound on fair_rank applies
// once p0 and r0 are set (NULL before: no bound).
var walkFilters = `WHERE j.status = 'pending' AND j.fair_rank > -1 AND j.run_at <= t
			AND (cardinality(qs) = 0 OR j.queue = ANY(qs)) AND (cardinality(ks) = 0 OR j.kind = ANY(ks))
			AND j.kind <> ALL(closed_k) AND j.queue <> ALL(closed_q)
			AND j.queue NOT IN (SELECT name FROM jobs_queues WHERE paused)
			AND (cardinality(full_k) = 0 OR j.kind || chr(31) || j.concurrency_key <> ALL(full_k))
			AND (cardinality(full_q) = 0 OR j.queue || chr(31) || j.concurrency_key <> ALL(full_q))
			AND (p0 IS NULL OR j.priority < p0 OR j.fair_rank <= r0 + lim + ` + claimScanMarginText + `)
		ORDER BY j.priority DESC, j.fair_rank, j.run_at, j.id`

// Constants of pgClaimFunc as SQL text.
var (
	claimScanMarginText = strconv.Itoa(claimScanMargin)
	maxPeriodText       = strconv.Itoa(int(admit.MaxPeriod/time.Second)) + " seconds"
)

// pgLimitedClaimSQL is the limited claim of q on PostgreSQL (see
// pgClaimFunc) and its arguments.
func (r *Repository) pgLimitedClaimSQL(q jobs.ClaimQuery) (string, []any) {
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
	for _, s := range admit.New(time.Time{}, kinds, queues).Scopes() { // sorted: the lock order
		if s.Type == admit.KindScope {
			add(s, q.KindLimits[s.Name])
		} else {
			add(s, q.QueueLimits[s.Name])
		}
	}
	return "SELECT " + jobColumns + " FROM jobs_limit_claim(?, ?, ?::text[], ?::text[], ?, ?::text[], ?::int[], ?::int[], ?::int[], ?::int[], ?::bigint[])",
		[]any{q.Owner, q.LeaseDuration.Microseconds(), pgdialect.Array(texts(q.Queues)), pgdialect.Array(texts(q.Kinds)), q.Limit,
			pgdialect.Array(scopes), pgdialect.Array(running), pgdialect.Array(perKey),
			pgdialect.Array(rate), pgdialect.Array(keyRate), pgdialect.Array(window)}
}

// texts is s, or an empty slice for nil: an empty array, not NULL.
func texts(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// pgNextStart reads the time at which a start that a rate holds back may
// come, for [jobs.ClaimQuery].NextStart, from the start log after a
// limited claim on PostgreSQL with a rate. It may be earlier than needed (a
// key that is full but has no job waiting), which costs one early claim.
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
