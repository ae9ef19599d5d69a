package jobsbun

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/admit"

	"github.com/uptrace/bun"
)

// This file spares limited claims on SQLite the walks that cannot admit anything:
// when every kind or queue of the claim is at its limit (shut), or when
// every queue and key with pending jobs is full (allBlocked). Such a walk
// would read every pending job of the claim's kinds in the index, under
// the claim's write lock on SQLite, on every wake-up.

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
