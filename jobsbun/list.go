package jobsbun

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/jobsmith/jobs"

	"github.com/google/uuid"
)

// maxListRanges is the most index ranges one List statement reads (SQLite
// allows 500 terms in a UNION ALL). A filter by finished status alone
// reads one range per kind that has such jobs; with more kinds than fit,
// List walks the primary key instead, as it does without a filter.
const maxListRanges = 200

// listStatuses are the statuses whose jobs a List of q reads, each as
// ranges of its own (see listSQL): those q asks for, without repeats, or
// every status when q filters by kind alone; nil when q filters by no
// status and no kind, and a walk of the primary key finds the page.
func listStatuses(q jobs.ListQuery) []jobs.Status {
	if len(q.Statuses) == 0 {
		if q.Kind == "" {
			return nil
		}
		return []jobs.Status{jobs.StatusWaiting, jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}
	}
	st := make([]jobs.Status, 0, len(q.Statuses))
	for _, s := range q.Statuses {
		if !slices.Contains(st, s) {
			st = append(st, s)
		}
	}
	return st
}

// listRange is one range of jobs_list_idx: the finished jobs of a kind in
// a status.
type listRange struct {
	kind   string
	status jobs.Status
}

// listRanges returns the ranges of jobs_list_idx that a List of q reads
// for the finished statuses among statuses, and whether they are few
// enough to read (see maxListRanges). With q's kind they are that kind in
// each status; without, each kind that has jobs in the status (in q's
// queue, if any), from the counts (schema_counts.go), so that a filter by
// status alone reads no range of a kind without such jobs.
func (r *Repository) listRanges(ctx context.Context, q jobs.ListQuery, statuses []jobs.Status) ([]listRange, bool, error) {
	rs := []listRange{}
	var finished []jobs.Status
	for _, s := range statuses {
		if s.Terminal() {
			finished = append(finished, s)
			if q.Kind != "" {
				rs = append(rs, listRange{q.Kind, s})
			}
		}
	}
	if q.Kind != "" || len(finished) == 0 {
		return rs, true, nil
	}
	counts := "SELECT queue, kind, status FROM jobs_counts WHERE n > 0"
	if r.d.pg {
		counts = "SELECT queue, kind, status FROM (" +
			"SELECT queue, kind, status, n FROM jobs_counts UNION ALL " +
			"SELECT queue, kind, status, n FROM jobs_count_changes) AS c " +
			"GROUP BY queue, kind, status HAVING SUM(n) > 0"
	}
	rows, err := r.db.QueryContext(ctx, counts)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var queue, kind, status string
		if err := rows.Scan(&queue, &kind, &status); err != nil {
			return nil, false, err
		}
		rg := listRange{kind, jobs.Status(status)}
		if (q.Queue == "" || q.Queue == queue) && slices.Contains(finished, rg.status) && !slices.Contains(rs, rg) {
			rs = append(rs, rg)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return rs, len(rs)+3 <= maxListRanges, nil
}

// listSQL is the statement of one List page of at most limit jobs older
// than after (none: uuid.Nil), with its arguments; q is valid, and ranges
// are its ranges of finished jobs (listRanges), or nil to walk the
// primary key. It returns "" when no job can match: ranges is empty and q
// asks for no pending or running job.
//
// Without a status or kind filter it walks the primary key downwards. With
// one, walking the primary key would read every newer job that does not
// match (all of a million finished jobs, when none matches), so the IDs of
// each status come from ranges of indexes instead, newest first and at
// most limit+1 of them each, and the page is the newest of those:
//
//   - finished jobs: a range of jobs_list_idx (schema_counts.go) per kind
//     and status; the branch names finished_at IS NOT NULL, which that
//     partial index requires;
//   - pending: two branches, ranked jobs (fair_rank > -1, jobs_claim_idx)
//     and jobs not yet ranked (fair_rank < 0, jobs_promote_idx), the
//     conditions of those partial indexes; running: jobs_rescue_idx;
//     waiting: jobs_waiting_idx (schema_deps.go). Their
//     jobs are read in full and sorted; their count is the backlog and the
//     jobs at work, not the table's size. On SQLite these branches order
//     by +id, so that the planner does not walk the primary key instead.
func (r *Repository) listSQL(q jobs.ListQuery, limit int, after uuid.UUID, ranges []listRange) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 16)
	b.WriteString("SELECT " + r.d.jobColumns() + " FROM jobs WHERE ")
	statuses := listStatuses(q)
	if statuses == nil || ranges == nil {
		b.WriteString("TRUE")
		args = r.filter(&b, args, q.Statuses, q, after) // admin.go
	} else {
		b.WriteString("id IN (")
		i := 0
		branch := func(cond string, order string, kind string) {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			b.WriteString("SELECT id FROM (SELECT id FROM jobs WHERE " + cond)
			if kind != "" {
				b.WriteString(" AND kind = ?")
				args = append(args, kind)
			}
			args = r.filter(&b, args, nil, jobs.ListQuery{Queue: q.Queue, CreatedBefore: q.CreatedBefore}, after)
			b.WriteString(" ORDER BY " + order + " DESC LIMIT ?) AS s" + strconv.Itoa(i))
			args = append(args, limit+1)
			i++
		}
		few := "id"
		if r.d.sqlite() {
			few = "+id"
		}
		for _, s := range statuses {
			switch s {
			case jobs.StatusPending:
				branch("status = 'pending' AND fair_rank > -1", few, q.Kind)
				branch("status = 'pending' AND fair_rank < 0", few, q.Kind)
			case jobs.StatusRunning:
				branch("status = 'running'", few, q.Kind)
			case jobs.StatusWaiting:
				branch("status = 'waiting'", few, q.Kind)
			}
		}
		for _, rg := range ranges {
			// rg.status is a valid finished status, written as a literal,
			// which the partial index needs to apply.
			branch("status = '"+string(rg.status)+"' AND finished_at IS NOT NULL", "id", rg.kind)
		}
		if i == 0 {
			return "", nil // no job has a status asked for
		}
		b.WriteString(")")
	}
	b.WriteString(" ORDER BY id DESC LIMIT ?")
	args = append(args, limit+1)
	return b.String(), args
}
