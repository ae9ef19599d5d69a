package jobsbun

import (
	"context"
	"time"

	"github.com/jobsmith/jobs"
	"github.com/jobsmith/jobs/internal/rules"

	"github.com/google/uuid"
)

// countSQL is the one statement of Stats, with its arguments: rows of
// (queue, kind, status, count, least RunAt of the due jobs or NULL), the
// finished jobs from jobs_counts (schema_counts.go; on PostgreSQL plus the
// changes not yet folded into it), the pending and running jobs live, each
// branch through a partial index whose condition it names: ranked and
// unranked pending jobs (jobs_claim_idx, jobs_promote_idx), running
// jobs (jobs_rescue_idx) and waiting jobs (jobs_waiting_idx). Its cost follows the backlog and the jobs at
// work, never the finished jobs.
func (d sqlDialect) countSQL(t time.Time) (string, []any) {
	finished := "SELECT queue, kind, status, n, NULL AS oldest FROM jobs_counts WHERE n <> 0"
	if d.pg {
		finished = "SELECT queue, kind, status, SUM(n)::bigint, NULL::timestamptz FROM (" +
			"SELECT queue, kind, status, n FROM jobs_counts UNION ALL " +
			"SELECT queue, kind, status, n FROM jobs_count_changes) AS c " +
			"GROUP BY queue, kind, status HAVING SUM(n) <> 0"
	}
	var args []any
	pending := func(cond string) string {
		var now string
		now, args = d.now(args, t)
		return " UNION ALL SELECT queue, kind, 'pending', COUNT(*), MIN(CASE WHEN run_at <= " + now + " THEN " + d.timeText("run_at") + " END) " +
			"FROM jobs WHERE status = 'pending' AND " + cond + " GROUP BY queue, kind"
	}
	q := finished + pending("fair_rank > -1") + pending("fair_rank < 0") +
		" UNION ALL SELECT queue, kind, 'running', COUNT(*), NULL FROM jobs WHERE status = 'running' GROUP BY queue, kind" +
		" UNION ALL SELECT queue, kind, 'waiting', COUNT(*), NULL FROM jobs WHERE status = 'waiting' GROUP BY queue, kind"
	return q, args
}

// Stats implements [jobs.JobRepository.Stats] with countSQL and one read
// of the paused queues (pause.go).
func (r *Repository) Stats(ctx context.Context) (*jobs.Stats, error) {
	const op = "stats"
	if err := r.read(op); err != nil {
		return nil, err
	}
	query, args := r.d.countSQL(rules.Now())
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	defer rows.Close()
	s := &jobs.Stats{ByStatus: map[jobs.Status]int{}, ByKind: map[string]map[jobs.Status]int{}, ByQueue: map[string]map[jobs.Status]int{},
		OldestPending: map[string]time.Time{}}
	for rows.Next() {
		var (
			queue, kind, status string
			n                   int
			oldest              timeCol
		)
		if err := rows.Scan(&queue, &kind, &status, &n, &oldest); err != nil {
			return nil, storageError(op, uuid.Nil, err)
		}
		if n == 0 {
			continue
		}
		s.Add(queue, kind, jobs.Status(status), n)
		if at := oldest.t; !at.IsZero() {
			if t, ok := s.OldestPending[queue]; !ok || at.Before(t) {
				s.OldestPending[queue] = at
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(op, uuid.Nil, err)
	}
	if s.Paused, err = r.pausedQueues(ctx, op); err != nil {
		return nil, err
	}
	return s, nil
}
