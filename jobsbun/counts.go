package jobsbun

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// countRow is one row of countSQL: how many jobs of a queue and kind are
// in a status and, for pending jobs, how many are ready and the oldest
// ready RunAt (zero when none is).
type countRow struct {
	queue, kind string
	status      jobs.Status
	n, ready    int
	oldest      time.Time
}

// countSQL is the one statement that counts jobs by queue, kind and status
// (schema_counts.go): finished jobs from jobs_counts (on PostgreSQL plus
// the changes not yet folded into it), pending and running jobs live, from
// the claim and rescue indexes. Its one argument is now, twice.
func (d sqlDialect) countSQL() string {
	finished := "SELECT queue, kind, status, n, 0 AS ready, NULL AS oldest FROM jobs_counts WHERE n <> 0"
	if d.pg {
		finished = "SELECT queue, kind, status, SUM(n)::bigint, 0, NULL::timestamptz FROM (" +
			"SELECT queue, kind, status, n FROM jobs_counts UNION ALL " +
			"SELECT queue, kind, status, n FROM jobs_count_changes) AS c " +
			"GROUP BY queue, kind, status HAVING SUM(n) <> 0"
	}
	return finished + " UNION ALL " +
		"SELECT queue, kind, 'pending', COUNT(*), SUM(CASE WHEN run_at <= ?" + d.castTime() + " THEN 1 ELSE 0 END), " +
		"MIN(CASE WHEN run_at <= ?" + d.castTime() + " THEN run_at END) " +
		"FROM jobs WHERE status = 'pending' GROUP BY queue, kind UNION ALL " +
		"SELECT queue, kind, 'running', COUNT(*), 0, NULL FROM jobs WHERE status = 'running' GROUP BY queue, kind"
}

// counts runs countSQL at now.
func (r *Repository) counts(ctx context.Context, op string, now time.Time) ([]countRow, error) {
	if err := r.read(op); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, r.d.countSQL(), now, now)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	defer rows.Close()
	var out []countRow
	for rows.Next() {
		var c countRow
		var oldest timeCol
		if err := rows.Scan(&c.queue, &c.kind, &c.status, &c.n, &c.ready, &oldest); err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		c.oldest = oldest.t
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	return out, nil
}

// Stats implements [jobs.JobRepository.Stats] with countSQL and one read
// of the paused queues (pause.go).
func (r *Repository) Stats(ctx context.Context) (*jobs.Stats, error) {
	const op = "stats"
	cs, err := r.counts(ctx, op, rules.Now())
	if err != nil {
		return nil, err
	}
	s := &jobs.Stats{ByStatus: map[jobs.Status]int{}, ByKind: map[string]map[jobs.Status]int{}, ByQueue: map[string]map[jobs.Status]int{}}
	for _, c := range cs {
		s.Add(c.queue, c.kind, c.status, c.n)
	}
	if s.Paused, err = r.pausedQueues(ctx, op); err != nil {
		return nil, err
	}
	return s, nil
}

// Queues implements [jobs.JobRepository.Queues] with countSQL and one read
// of the paused queues (pause.go).
func (r *Repository) Queues(ctx context.Context) ([]jobs.QueueStats, error) {
	const op = "queues"
	now := rules.Now()
	cs, err := r.counts(ctx, op, now)
	if err != nil {
		return nil, err
	}
	paused, err := r.pausedQueues(ctx, op)
	if err != nil {
		return nil, err
	}
	byName := map[string]*jobs.QueueStats{}
	oldest := map[string]time.Time{}
	queue := func(name string) *jobs.QueueStats {
		q := byName[name]
		if q == nil {
			q = &jobs.QueueStats{Name: name, Counts: map[jobs.Status]int{}}
			byName[name] = q
		}
		return q
	}
	for _, c := range cs {
		q := queue(c.queue)
		q.Counts[c.status] += c.n
		q.Ready += c.ready
		if t, ok := oldest[c.queue]; c.ready > 0 && (!ok || c.oldest.Before(t)) {
			oldest[c.queue] = c.oldest
		}
	}
	for _, name := range paused {
		queue(name).Paused = true
	}
	qs := make([]jobs.QueueStats, 0, len(byName))
	for _, q := range byName {
		if t, ok := oldest[q.Name]; ok {
			q.Latency = max(now.Sub(t), 0)
		}
		qs = append(qs, *q)
	}
	slices.SortFunc(qs, func(a, b jobs.QueueStats) int { return cmp.Compare(a.Name, b.Name) })
	return qs, nil
}
